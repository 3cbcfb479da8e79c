"""The one handset rule: a script answers after its delay, a person by the button pressed."""

from __future__ import annotations

import pytest

from operators.identity import Verdict
from operators.identity.handset import verdict
from operators.subscriber import HandsetAnswer, HandsetBehaviour, HandsetMode

INTERACTIVE = HandsetBehaviour(mode=HandsetMode.INTERACTIVE)


@pytest.mark.parametrize("pressed", [None, Verdict.APPROVED, Verdict.DENIED])
def test_a_scripted_handset_ignores_presses(pressed: Verdict | None) -> None:
    approves = HandsetBehaviour(answer=HandsetAnswer.APPROVE, delay=3)
    denies = HandsetBehaviour(answer=HandsetAnswer.DENY, delay=0)
    assert verdict(approves, 10.0, 12.0, pressed) is Verdict.PENDING
    assert verdict(approves, 10.0, 13.0, pressed) is Verdict.APPROVED
    assert verdict(denies, 10.0, 10.0, pressed) is Verdict.DENIED
    assert verdict(HandsetBehaviour(answer=HandsetAnswer.NEVER), 0, 1e9, pressed) is (
        Verdict.PENDING)


def test_an_interactive_handset_answers_only_by_the_button() -> None:
    assert verdict(INTERACTIVE, 10.0, 1e9) is Verdict.PENDING  # no delay makes it answer
    assert verdict(INTERACTIVE, 10.0, 10.0, Verdict.APPROVED) is Verdict.APPROVED
    assert verdict(INTERACTIVE, 10.0, 10.0, Verdict.DENIED) is Verdict.DENIED


def test_scripted_is_the_default_and_old_records_read_as_scripted() -> None:
    assert HandsetBehaviour().mode is HandsetMode.SCRIPTED
    old = HandsetBehaviour.model_validate_json('{"answer": "deny", "delay": 2}')
    assert old.mode is HandsetMode.SCRIPTED
