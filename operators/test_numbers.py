"""Documented test numbers with fixed behaviour, as public operator sandboxes publish them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from .subscriber import Connectivity, HandsetAnswer, HandsetBehaviour


@dataclass(frozen=True)
class TestNumber:
    """One reserved suffix and how the subscriber behind it answers every API."""

    __test__ = False  # not a pytest class

    suffix: int
    role: str
    description: str
    home_country_roaming: str = "FR"

    def overrides(self, reference: datetime, home_country: str) -> dict[str, Any]:
        """Fields forced on the generated subscriber, relative to the base's reference time."""
        years_ago = reference - timedelta(days=3 * 365)
        fixed: dict[str, Any] = {
            "activated_at": years_ago,
            "sim_swaps": (reference - timedelta(days=400),),
            "connectivity": (Connectivity.DATA, Connectivity.SMS),
            "roaming_country": None,
            "handset": HandsetBehaviour(answer=HandsetAnswer.APPROVE, delay=0.0),
            "legitimate_interest_opt_out": False,
        }
        visited = "FR" if home_country != "FR" else "ES"
        extra: dict[str, dict[str, Any]] = {
            "recent-swap": {"sim_swaps": (reference - timedelta(hours=2),)},
            "never-swapped": {"sim_swaps": ()},
            "roaming": {"roaming_country": visited},
            "unreachable": {"connectivity": ()},
            "sms-only": {"connectivity": (Connectivity.SMS,)},
            "denies-consent": {"handset": HandsetBehaviour(answer=HandsetAnswer.DENY, delay=0.5)},
            "never-answers": {"handset": HandsetBehaviour(answer=HandsetAnswer.NEVER)},
            "slow-consent": {"handset": HandsetBehaviour(answer=HandsetAnswer.APPROVE, delay=10)},
            "opted-out": {"legitimate_interest_opt_out": True},
        }
        fixed.update(extra.get(self.role, {}))
        return fixed


TEST_NUMBERS: tuple[TestNumber, ...] = (
    TestNumber(
        1,
        "approves",
        "reachable (DATA+SMS) at home, SIM swapped 400 days ago, handset approves consent at once",
    ),
    TestNumber(2, "recent-swap", "SIM swapped 2 hours before the operator started"),
    TestNumber(3, "never-swapped", "SIM never swapped since activation 3 years ago"),
    TestNumber(4, "roaming", "roaming abroad (FR, or ES for a French operator), reachable"),
    TestNumber(5, "unreachable", "device not connected for data or SMS"),
    TestNumber(6, "sms-only", "device connected for SMS only"),
    TestNumber(7, "denies-consent", "handset denies every consent prompt"),
    TestNumber(8, "never-answers", "handset never answers a consent prompt"),
    TestNumber(9, "slow-consent", "handset approves after 10 seconds"),
    TestNumber(10, "opted-out", "opted out of processing under legitimate interest"),
)

RESERVED_SUFFIXES = 100
"""Suffixes below this are kept for test numbers; generated subscribers never use them."""


def by_suffix(suffix: int) -> TestNumber | None:
    return next((t for t in TEST_NUMBERS if t.suffix == suffix), None)
