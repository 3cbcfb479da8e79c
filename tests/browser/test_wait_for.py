"""The browser tests' one way to wait: a page replaced under a condition is not a failure."""

from __future__ import annotations

import re

import pytest
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException

from tests.browser.conftest import wait_for


def test_a_condition_that_meets_a_page_being_replaced_is_read_again() -> None:
    """What a form post does: the old page's element goes stale, the new one is not there
    yet, then it is."""
    readings = iter([StaleElementReferenceException("gone"), NoSuchElementException("not yet")])

    def condition() -> bool:
        reading = next(readings, None)
        if reading is not None:
            raise reading
        return True

    wait_for(condition, "the new page")
    assert next(readings, None) is None  # both were read through


def test_a_condition_that_never_holds_fails_naming_what_it_waited_for() -> None:
    def condition() -> bool:
        raise StaleElementReferenceException("always gone")

    waited = re.escape("still waiting after 0.2 s for the plan to change")
    with pytest.raises(AssertionError, match=waited) as failed:
        wait_for(condition, "the plan to change", timeout=0.2)
    assert isinstance(failed.value.__cause__, StaleElementReferenceException)  # why, kept


def test_any_other_error_of_the_condition_is_the_test_failing() -> None:
    def condition() -> bool:
        raise ValueError("a real bug")

    with pytest.raises(ValueError, match="a real bug"):
        wait_for(condition, "anything")
