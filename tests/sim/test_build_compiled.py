"""``benchmarks/build_compiled.py``: its module list stays compilable by mypyc.

The build itself takes minutes and a C compiler, so CI does not run it; these checks catch the
changes that would break it or silently compile nothing (a module renamed, a pydantic model
or a ``RuntimeError`` subclass added to a compiled module, a deleted slot without
``__deletable__``)."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))

from build_compiled import MODULES, PACKAGES, imported_from, run_scenario  # noqa: E402


@pytest.mark.parametrize("module", MODULES)
def test_each_compiled_module_exists_in_a_copied_package(module: str) -> None:
    assert (ROOT / module).is_file()
    assert module.split("/")[0] in PACKAGES


@pytest.mark.parametrize("module", MODULES)
def test_no_compiled_module_defines_a_pydantic_model(module: str) -> None:
    """mypyc's C for a module defining a BaseModel subclass does not compile."""
    tree = ast.parse((ROOT / module).read_text())
    bases = {
        ast.unparse(base)
        for node in ast.walk(tree)
        if isinstance(node, ast.ClassDef)
        for base in node.bases
    }
    assert not {"BaseModel", "pydantic.BaseModel"} & bases, module


NATIVE_EXCEPTION_BASES = {"BaseException", "Exception", "ValueError", "LookupError", "IndexError"}
"""The built-in exceptions mypyc lets a native class subclass (``can_subclass_builtin``; its
warnings aside, which no compiled module defines)."""


@pytest.mark.parametrize("module", MODULES)
def test_no_compiled_module_subclasses_another_built_in_exception(module: str) -> None:
    """A native subclass of any other built-in exception (``RuntimeError``, say) needs an
    annotation from ``mypy_extensions``, a development-only package: the build fails. The
    check reads the bases as written (``RuntimeError`` or ``builtins.RuntimeError``), not a
    chain through a class of this project's, which the build itself would refuse."""
    import builtins

    refused = {
        name
        for name, value in vars(builtins).items()
        if isinstance(value, type) and issubclass(value, BaseException)
    } - NATIVE_EXCEPTION_BASES
    tree = ast.parse((ROOT / module).read_text())
    bases = {
        ast.unparse(base).removeprefix("builtins.")
        for node in ast.walk(tree)
        if isinstance(node, ast.ClassDef)
        for base in node.bases
    }
    assert not refused & bases, module


def test_the_source_digest_moves_with_any_package_source(tmp_path: Path) -> None:
    """A compiled copy older than the code is reported stale by ``sim_throughput.py``."""
    from build_compiled import source_digest

    for package in PACKAGES:
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text("")
    before = source_digest(tmp_path)
    assert source_digest(tmp_path) == before
    (tmp_path / "sim" / "__init__.py").write_text("X = 1\n")
    assert source_digest(tmp_path) != before


def test_the_installed_setuptools_reads_the_project_file() -> None:
    """mypyc builds the copy with this environment's setuptools, which reads
    ``pyproject.toml``: one too old for its license expression stops the build (the dev extra
    asks for ``setuptools>=77`` for that reason)."""
    from setuptools.config.pyprojecttoml import read_configuration

    project = read_configuration(ROOT / "pyproject.toml")["project"]
    assert project["name"] == "ogsim" and project["license"] == "Apache-2.0"


def test_the_check_refuses_to_run_a_copy_that_the_checkout_would_shadow(tmp_path: Path) -> None:
    """Run from the checkout, ``python -m`` imports the checkout's modules before the copy's:
    the check said "identical" of the pure build compared with itself. A copy that is not
    what the run would import stops the build instead."""
    copy = tmp_path / "copy"  # a copy with no modules: whatever runs comes from elsewhere
    copy.mkdir()

    assert imported_from(copy, ROOT).startswith(str(ROOT / "sim"))
    with pytest.raises(SystemExit, match="not the copy's extension"):
        run_scenario(copy, tmp_path / "out", ROOT)
    assert not (tmp_path / "out").exists()  # refused before the scenario ran
