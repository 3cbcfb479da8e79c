"""Build a copy of ogsim with its hottest simulation modules compiled by mypyc (opt-in).

Profiles of the thundering herd are flat: after the trimming recorded in the README no single
function is worth more than a few per cent, and most of the time is the Python interpreter's own
work per call and per attribute. mypyc compiles type-annotated modules to C extensions, which
removes much of that. This script does it **outside the checkout**: it copies the packages into
``--out`` (default ``.compiled/``), compiles :data:`MODULES` there, and checks that the thundering
herd's summary and CSVs are byte-identical to the pure-Python run's. The checkout itself stays
pure Python, so editing a module is never shadowed by a stale extension, and the tests, the
debugger and ``monkeypatch`` see plain Python as always.

Use the copy by putting it first on the path::

    .venv/bin/python benchmarks/build_compiled.py            # ~3 minutes; needs gcc
    PYTHONPATH=.compiled .venv/bin/python benchmarks/sim_throughput.py

``sim_throughput.py`` says which of its hot modules are compiled. The copy is a snapshot: build
it again after changing the code (the build records a digest of the sources it was made
from, and ``sim_throughput.py`` says when the checkout's differ).

``--tests`` then runs the test suites of the compiled code (:data:`TEST_PATHS`) against the
copy: from a scratch folder, with the copy first on the path and pytest's ``append`` import
mode, which would otherwise put the checkout first and silently test the pure modules (the
script checks that the copy's extension is what the tests import). ``--tests-only`` skips
the build and tests the copy as it is.

A compiled module may define no pydantic model (mypyc's C for one does not compile) and no
subclass of a built-in exception other than the few mypyc takes natively (``Exception``,
``ValueError``, ...): a ``RuntimeError`` subclass would need ``mypy_extensions``, a
development-only dependency. The hot modules keep such classes in modules of their own beside them
(``circuit_breaker_config``, ``guard_settings``, ``fault_change``, ``balancer_errors``), which
stay interpreted, as does ``operators/errors.py``, which the profile still shows and which is
mostly such classes; the service-time draws moved out of ``operators/core/description.py``'s
models to ``operators/core/samplers.py`` so that they compile.
"""

from __future__ import annotations

import argparse
import filecmp
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("operators", "federation", "sim")
MODULES = (
    "operators/policies/throttle.py",
    "operators/policies/token_bucket.py",
    "operators/policies/counter_store.py",
    "operators/policies/bulkhead.py",
    "operators/policies/load_shedder.py",
    "operators/gateway/admission.py",
    "operators/integrator/flow.py",
    "operators/integrator/operations.py",
    "operators/core/hlr.py",
    "operators/core/record_memo.py",
    "operators/identity/grant_standing.py",
    "operators/identity/purposes.py",
    "operators/gateway/subscriptions.py",
    "sim/faults.py",
    "operators/core/occupancy.py",
    "operators/core/service_model.py",
    "operators/core/samplers.py",
    "sim/tiers/timers.py",
    "sim/tiers/deadlines.py",
    "sim/tiers/operator.py",
    "sim/tiers/integrator.py",
    "sim/tiers/gateway_pool.py",
    "sim/traffic.py",
    "sim/metrics.py",
    "sim/engine.py",
    "operators/policies/circuit_breaker.py",
    "operators/policies/retry.py",
    "operators/integrator/protection.py",
    "sim/tiers/network_function.py",
    "federation/global_load_balancer.py",
)
"""The modules compiled: the herd's profile, less those made of pydantic models and exceptions
(module docstring)."""
CHECK_SCENARIO = "scenarios/thundering_herd.yaml"
STAMP = "COMPILED_FROM"
"""The file in the copy holding :func:`source_digest` of the sources it was compiled from."""


def copy_tree(out: Path) -> None:
    """The packages and the mypy settings, fresh (no caches, no earlier extensions)."""
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.so", "*.pyc")
    for package in PACKAGES:
        shutil.copytree(ROOT / package, out / package, ignore=ignore)
    shutil.copy2(ROOT / "pyproject.toml", out / "pyproject.toml")


def compile_modules(out: Path) -> None:
    """mypyc, in the copy (it type-checks the whole import graph, then builds in place)."""
    result = subprocess.run(
        [sys.executable, "-m", "mypyc", *MODULES], cwd=out, capture_output=True, text=True
    )
    if result.returncode != 0:
        sys.exit(f"mypyc failed (exit {result.returncode}):\n{result.stdout[-4000:]}")
    built = sorted(p.relative_to(out) for p in out.rglob("*.so"))
    print(f"  {len(built)} extension modules built")
    shutil.rmtree(out / "build", ignore_errors=True)  # mypyc's C and object files


def source_digest(root: Path = ROOT) -> str:
    """A digest of the packages' Python sources: what a compiled copy was made from, so a
    copy older than the code can be told (whatever git says, edits not yet committed too)."""
    digest = hashlib.sha256()
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def _environment(path: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(path), "MPLBACKEND": "Agg"}


def imported_from(path: Path, cwd: Path) -> str:
    """The file :data:`PROBE` is imported from with ``path`` first on the path, run in ``cwd``.

    Run from the checkout, ``python -m`` and ``-c`` put the current folder before
    ``PYTHONPATH``, so the checkout's pure modules would shadow the copy's extensions: every
    run of the copy goes from a scratch folder, and this says what it really imports.
    """
    probe = subprocess.run(
        [sys.executable, "-c", f"import {PROBE} as m; print(m.__file__)"],
        cwd=cwd,
        env=_environment(path),
        capture_output=True,
        text=True,
        check=True,
    )
    return probe.stdout.strip()


def run_scenario(path: Path, out: Path, cwd: Path) -> None:
    """The check scenario's run with ``path`` first on the path, its results in ``out``."""
    compiled = path != ROOT
    where = imported_from(path, cwd)
    extension = not where.endswith(".py")
    if where.startswith(str(path)) and extension == compiled:
        subprocess.run(
            [sys.executable, "-m", "sim.cli", "run", str(ROOT / CHECK_SCENARIO), "--out", str(out)],
            cwd=cwd,
            env=_environment(path),
            check=True,
            capture_output=True,
        )
        return
    build = "the copy's extension" if compiled else "the checkout's source"
    sys.exit(f"the check would import {PROBE} from {where}, not {build}")


def same_results(pure: Path, compiled: Path) -> list[str]:
    """The files (summary and CSVs) whose bytes differ between the two runs."""
    names = sorted(
        p.relative_to(pure)
        for p in pure.rglob("*")
        if p.is_file() and p.suffix in (".json", ".csv")
    )
    return [str(n) for n in names if not filecmp.cmp(pure / n, compiled / n, shallow=False)]


TEST_PATHS = (
    "tests/sim",
    "tests/operators/policies",
    "tests/operators/gateway",
    "tests/operators/integrator",
    "tests/operators/core",
)
"""The suites that exercise the compiled modules (the simulation and the live objects it calls)."""
PROBE = "sim.tiers.timers"
"""A compiled module: the tests must import it from the copy's extension."""


def run_tests(out: Path) -> int:
    """Run :data:`TEST_PATHS` against the copy at ``out``; pytest's exit status."""
    with tempfile.TemporaryDirectory(prefix="ogsim-compiled-tests-") as scratch:
        where = imported_from(out, Path(scratch))
        if not where.startswith(str(out)) or where.endswith(".py"):
            sys.exit(f"the tests would import {PROBE} from {where}, not the copy's extension")
        print(f"testing the copy ({PROBE} from {Path(where).name}): {' '.join(TEST_PATHS)}")
        argv = [
            sys.executable,
            "-m",
            "pytest",
            "--rootdir",
            str(ROOT),
            "-c",
            str(ROOT / "pyproject.toml"),
            "--import-mode=append",
            "-p",
            "no:cacheprovider",
            *(str(ROOT / path) for path in TEST_PATHS),
        ]
        return subprocess.run(argv, cwd=scratch, env=_environment(out), check=False).returncode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / ".compiled", help="the copy's folder")
    parser.add_argument(
        "--no-check", action="store_true", help="skip the byte-for-byte check on the herd"
    )
    parser.add_argument(
        "--tests", action="store_true", help="then run the compiled code's test suites on it"
    )
    parser.add_argument(
        "--tests-only", action="store_true", help="test the existing copy, without building"
    )
    args = parser.parse_args()
    out = args.out.resolve()
    if args.tests_only:
        if not (out / STAMP).exists():
            sys.exit(f"no compiled copy in {out}: build it first")
        if (out / STAMP).read_text().strip() != source_digest():
            sys.exit(f"the copy in {out} is stale (the sources changed since): build it again")
        sys.exit(run_tests(out))
    started = time.monotonic()
    print(f"copying {', '.join(PACKAGES)} to {out}")
    copy_tree(out)
    print(f"compiling {len(MODULES)} modules with mypyc (about 3 minutes)")
    compile_modules(out)
    (out / STAMP).write_text(source_digest() + "\n")
    if not args.no_check:
        print(f"checking {CHECK_SCENARIO}: pure and compiled runs must agree byte for byte")
        with tempfile.TemporaryDirectory(prefix="ogsim-compiled-") as scratch:
            pure, compiled = Path(scratch) / "pure", Path(scratch) / "compiled"
            run_scenario(ROOT, pure, Path(scratch))
            run_scenario(out, compiled, Path(scratch))
            differing = same_results(pure, compiled)
        if differing:
            sys.exit(f"the compiled copy's results differ: {', '.join(differing)}")
        print("  summary and CSVs identical")
    print(f"built in {time.monotonic() - started:.0f} s; use it with PYTHONPATH={out}")
    if args.tests:
        sys.exit(run_tests(out))


if __name__ == "__main__":
    main()
