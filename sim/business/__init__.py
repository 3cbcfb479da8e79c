"""A simulated API business over months, its analytics scored against the ground truth.

``sim.business.scenario`` reads ``kind: api_business`` files; ``sim.business.population``
(with ``sim.business.abusers``, over the records of ``sim.business.applications``) and
``sim.business.traffic`` are the developers and their hourly calls in SimPy time,
``sim.business.world`` feeds them to the operator's own :class:`operators.analytics.Analytics`;
``sim.business.scoring`` judges its alerts, funnel and segments against
``sim.business.truth``; ``sim.business.report`` writes the folder and
``sim.business.console`` is what ``ogsim run`` shows.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from operators import lazy_face

if TYPE_CHECKING:
    from sim.business.console import run_business_file
    from sim.business.report import write_business_report
    from sim.business.results import BusinessResult, summary
    from sim.business.run import result_of, run_business
    from sim.business.scenario import BusinessScenario, is_business_file, load_business_scenario
    from sim.business.world import BusinessWorld

__all__ = [
    "BusinessResult",
    "BusinessScenario",
    "BusinessWorld",
    "is_business_file",
    "load_business_scenario",
    "result_of",
    "run_business",
    "run_business_file",
    "summary",
    "write_business_report",
]

_HOMES = {
    "run_business_file": "sim.business.console",
    "write_business_report": "sim.business.report",
    "BusinessResult": "sim.business.results",
    "summary": "sim.business.results",
    "result_of": "sim.business.run",
    "run_business": "sim.business.run",
    "BusinessScenario": "sim.business.scenario",
    "is_business_file": "sim.business.scenario",
    "load_business_scenario": "sim.business.scenario",
    "BusinessWorld": "sim.business.world",
}
"""Where each public name lives; imported on first use (PEP 562)."""

__getattr__, __dir__ = lazy_face(__name__, _HOMES, __all__)
