"""Black-box QA of any live gateway: Locust users and shapes, reconciliation, CAMARA conformance.

An installed package (``locust -f loadtests/locustfile.py`` and ``ogsim loadtest`` find it
wherever they start). ``locustfile.py`` holds the user classes; the modules beside it are
plain code it and ``ogsim loadtest`` share: the descriptor and its subscribers
(:mod:`.federation_view`), the expected answers (:mod:`.answers`), what a call's outcome is
(:mod:`.outcomes`), the applications a run registers (:mod:`.provisioning`), the exact
counters (:mod:`.tally`), the comparison with metering and settlement
(:mod:`.reconciliation`), the load shapes (:mod:`.shapes`), one Locust run
(:mod:`.locust_run`) and where CAMARA's definitions are (:mod:`.camara_definitions`).
:mod:`.conformance` runs CAMARA's own ``.feature`` scenarios, against ogsim's own operator
in process too (:func:`in_process_target`). ``loadtests`` imports
``operators`` and ``federation``, never ``sim``; names are imported on first use, so the
locustfile's gevent world does not load the conformance runner.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from operators import lazy_face

if TYPE_CHECKING:
    from loadtests.camara_definitions import CAMARA_DIR_VARIABLE, camara_dir
    from loadtests.conformance.ogsim_operator import in_process_target
    from loadtests.federation_view import Descriptor, DescriptorError, load_descriptor
    from loadtests.locust_run import (
        LOCUSTFILE,
        LocustRun,
        federation_for_run,
        read_summary,
        reconcile_run,
        run_locust,
        seconds,
        thresholds,
    )
    from loadtests.reconciliation import Reconciliation, RunFileError, reconcile, render

__all__ = [
    "CAMARA_DIR_VARIABLE",
    "LOCUSTFILE",
    "Descriptor",
    "DescriptorError",
    "LocustRun",
    "Reconciliation",
    "RunFileError",
    "camara_dir",
    "federation_for_run",
    "in_process_target",
    "load_descriptor",
    "read_summary",
    "reconcile",
    "reconcile_run",
    "render",
    "run_locust",
    "seconds",
    "thresholds",
]

_HOMES = {
    "CAMARA_DIR_VARIABLE": "loadtests.camara_definitions",
    "camara_dir": "loadtests.camara_definitions",
    "in_process_target": "loadtests.conformance.ogsim_operator",
    "Descriptor": "loadtests.federation_view",
    "DescriptorError": "loadtests.federation_view",
    "load_descriptor": "loadtests.federation_view",
    "LOCUSTFILE": "loadtests.locust_run",
    "LocustRun": "loadtests.locust_run",
    "federation_for_run": "loadtests.locust_run",
    "read_summary": "loadtests.locust_run",
    "reconcile_run": "loadtests.locust_run",
    "run_locust": "loadtests.locust_run",
    "seconds": "loadtests.locust_run",
    "thresholds": "loadtests.locust_run",
    "Reconciliation": "loadtests.reconciliation",
    "RunFileError": "loadtests.reconciliation",
    "reconcile": "loadtests.reconciliation",
    "render": "loadtests.reconciliation",
}
"""Where each public name lives; imported on first use (PEP 562)."""

__getattr__, __dir__ = lazy_face(__name__, _HOMES, __all__)
