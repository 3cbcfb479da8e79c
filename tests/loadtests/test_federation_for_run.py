"""The federation ``ogsim loadtest`` starts for a run: a second run into the same ``--out``
starts as the first did, and a config it cannot start is named before any process."""

from __future__ import annotations

from pathlib import Path

import pytest

from federation import PartyStartError, default_federation
from loadtests.federation_view import load_descriptor
from loadtests.locust_run import federation_for_run


def test_a_second_run_into_the_same_out_starts_its_own_federation(tmp_path: Path) -> None:
    for _ in range(2):  # was: every party exits 2, its databases sealed under the first key
        with federation_for_run(None, tmp_path, None) as described:  # every party ready
            assert load_descriptor(described).application is not None


def test_a_federation_without_aggregators_is_named(tmp_path: Path) -> None:
    lonely = default_federation().model_copy(update={"aggregators": ()})
    with (
        pytest.raises(PartyStartError, match="no aggregators"),
        federation_for_run(None, tmp_path, None, config=lonely),
    ):
        pass
    assert not list((tmp_path / "federation").glob("*.log")), "no party started"


def test_a_federation_folder_ogsim_did_not_make_is_left_alone(tmp_path: Path) -> None:
    """``--out .`` from the checkout has the ``federation`` package below it: a run makes
    its federation afresh only in a folder an earlier run made (its federation.yaml)."""
    theirs = tmp_path / "federation"
    theirs.mkdir()
    (theirs / "__init__.py").write_text("# somebody's code\n")
    with (
        pytest.raises(PartyStartError, match="is not a federation"),
        federation_for_run(None, tmp_path, None),
    ):
        pass
    assert (theirs / "__init__.py").read_text() == "# somebody's code\n"
