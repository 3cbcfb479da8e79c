from __future__ import annotations

import importlib
from pathlib import Path

import operators.policies

MODULES = (
    "autoscaler",
    "bulkhead",
    "circuit_breaker",
    "circuit_breaker_config",
    "counter_store",
    "load_shedder",
    "quota",
    "retry",
    "throttle",
    "token_bucket",
)


def test_package_exports_every_public_class_of_its_modules() -> None:
    exported = set(operators.policies.__all__)
    for name in MODULES:
        module = importlib.import_module(f"operators.policies.{name}")
        public = {n for n in module.__all__ if isinstance(getattr(module, n), type)}
        assert public <= exported, f"{name} has public classes missing from the package"
    for name in exported:
        assert getattr(operators.policies, name) is not None


def test_policies_import_no_io_or_simulation_framework() -> None:
    for name in MODULES:
        # the source beside the package, not the module's origin: in the compiled build
        # (benchmarks/build_compiled.py) that is an extension, not Python
        text = (Path(operators.policies.__file__).parent / f"{name}.py").read_text("utf-8")
        for forbidden in ("import asyncio", "import simpy", "import threading", "fastapi", "httpx"):
            assert forbidden not in text, f"{name} imports {forbidden}"
