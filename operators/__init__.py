"""One telco operator of the GSMA Open Gateway, live: the domain that never imports the others.

This face names what ``federation``, ``sim`` and ``loadtests`` may use of the operator's own
modules; the sub-packages (``operators.identity``, ``operators.gateway``, ``operators.camara``,
``operators.integrator``, ``operators.core``, ``operators.policies``) are faces of their own.
Names are imported on first use, so importing one part never drags in the others (the
gateway does not load the identity server's SQLite layer because a config was read).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from operators.faces import lazy_face

if TYPE_CHECKING:
    from operators.admin_auth import admin_guard, is_admin
    from operators.config import (
        E164_PREFIX,
        LegalBasis,
        OperatorConfig,
        Plan,
        PurposePolicy,
        Quota,
        QuotaPeriod,
        TokenLifetimes,
        default_plans,
        default_purposes,
        example_operator,
    )
    from operators.config_file import (
        ConfigFileError,
        field_problems,
        line_of,
        load_yaml_model,
        parse_override,
        read_yaml_mapping,
        set_dotted,
    )
    from operators.errors import CamaraError, OAuthError
    from operators.housekeeping import REPLAY_WINDOW, Housekeeping, Retention
    from operators.operator import Operator, create_operator_app
    from operators.outbound_hosts import host_problem, is_loopback, scheme_problem, sink_problem
    from operators.served_config import ServedOperatorConfig
    from operators.serving import serve_until_stopped
    from operators.storage import Database
    from operators.subscriber import Subscriber
    from operators.subscriber_base import Change, ChangeKind, NumberPlan, SubscriberBase
    from operators.test_numbers import TEST_NUMBERS
    from operators.types import Clock

__all__ = [
    "E164_PREFIX",
    "REPLAY_WINDOW",
    "TEST_NUMBERS",
    "CamaraError",
    "Change",
    "ChangeKind",
    "Clock",
    "ConfigFileError",
    "Database",
    "Housekeeping",
    "LegalBasis",
    "NumberPlan",
    "OAuthError",
    "Operator",
    "OperatorConfig",
    "Plan",
    "PurposePolicy",
    "Quota",
    "QuotaPeriod",
    "Retention",
    "ServedOperatorConfig",
    "Subscriber",
    "SubscriberBase",
    "TokenLifetimes",
    "admin_guard",
    "cancel_and_wait",
    "create_operator_app",
    "default_plans",
    "default_purposes",
    "example_operator",
    "field_problems",
    "host_problem",
    "is_admin",
    "is_loopback",
    "lazy_face",
    "line_of",
    "load_yaml_model",
    "parse_override",
    "read_yaml_mapping",
    "scheme_problem",
    "serve_until_stopped",
    "set_dotted",
    "sink_problem",
]

_HOMES = {
    "admin_guard": "operators.admin_auth",
    "is_admin": "operators.admin_auth",
    "E164_PREFIX": "operators.config",
    "LegalBasis": "operators.config",
    "OperatorConfig": "operators.config",
    "Plan": "operators.config",
    "PurposePolicy": "operators.config",
    "Quota": "operators.config",
    "QuotaPeriod": "operators.config",
    "TokenLifetimes": "operators.config",
    "default_plans": "operators.config",
    "default_purposes": "operators.config",
    "example_operator": "operators.config",
    "ConfigFileError": "operators.config_file",
    "field_problems": "operators.config_file",
    "line_of": "operators.config_file",
    "load_yaml_model": "operators.config_file",
    "parse_override": "operators.config_file",
    "read_yaml_mapping": "operators.config_file",
    "set_dotted": "operators.config_file",
    "CamaraError": "operators.errors",
    "OAuthError": "operators.errors",
    "Housekeeping": "operators.housekeeping",
    "REPLAY_WINDOW": "operators.housekeeping",
    "Retention": "operators.housekeeping",
    "Operator": "operators.operator",
    "create_operator_app": "operators.operator",
    "host_problem": "operators.outbound_hosts",
    "is_loopback": "operators.outbound_hosts",
    "scheme_problem": "operators.outbound_hosts",
    "sink_problem": "operators.outbound_hosts",
    "ServedOperatorConfig": "operators.served_config",
    "serve_until_stopped": "operators.serving",
    "cancel_and_wait": "operators.background",
    "Database": "operators.storage",
    "Subscriber": "operators.subscriber",
    "Change": "operators.subscriber_base",
    "ChangeKind": "operators.subscriber_base",
    "NumberPlan": "operators.subscriber_base",
    "SubscriberBase": "operators.subscriber_base",
    "TEST_NUMBERS": "operators.test_numbers",
    "Clock": "operators.types",
}
"""Where each public name lives; imported on first use (PEP 562)."""

__getattr__, __dir__ = lazy_face(__name__, _HOMES, __all__)
