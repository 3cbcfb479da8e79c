"""The packages' imports point one way and never go round in a circle (DESIGN.md, "Layout").

``operators`` ← ``federation`` ← {``sim``, ``loadtests``} ← the CLI (``sim.cli``): a module
may import its own package and the packages to its left, ``sim`` and ``loadtests`` not each
other, and only the CLI may import everything. Every import counts for the direction, even
one inside a function or under ``TYPE_CHECKING``: a lazy import is still a dependency.
Cycles are counted on module-level imports only; one closed by a ``TYPE_CHECKING`` import is
how a cycle is broken, not one. Each package's face (``__init__`` with ``__all__``) must
name only what exists, and an import from another top-level package goes through one of its
faces (``from operators.core import Faults``, not ``from operators.core.description import
Faults``), taking only names the face's ``__all__`` lists.
"""

from __future__ import annotations

import ast
import importlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import networkx as nx
import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("operators", "federation", "sim", "loadtests")
CLI = ("sim.cli",)
"""The command line."""
ALLOWED = {
    "operators": {"operators"},
    "federation": {"operators", "federation"},
    "sim": {"operators", "federation", "sim"},
    "loadtests": {"operators", "federation", "loadtests"},
    "cli": set(PACKAGES),
}


@dataclass(frozen=True)
class Import:
    source: str
    target: str
    line: int
    module_level: bool
    """Executed when the module is imported: not in a function, not under TYPE_CHECKING."""
    names: tuple[str, ...] = ()
    """What an ``import from`` takes from ``target`` (none when it imports the module itself)."""


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {
    _module_name(path): path for package in PACKAGES for path in (ROOT / package).rglob("*.py")
}
FACES = sorted(module for module, path in MODULES.items() if path.name == "__init__.py")
"""Every package's ``__init__``: what other packages may import."""


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _resolve(module: str, node: ast.ImportFrom) -> list[tuple[str, tuple[str, ...]]]:
    """The ogsim modules an ``import from`` names (a submodule when the name is one), each
    with the names taken from it."""
    if node.level:
        package = module if MODULES[module].name == "__init__.py" else module.rpartition(".")[0]
        for _ in range(node.level - 1):
            package = package.rpartition(".")[0]
        base = f"{package}.{node.module}" if node.module else package
    else:
        base = node.module or ""
    found = [f"{base}.{alias.name}" for alias in node.names if f"{base}.{alias.name}" in MODULES]
    names = tuple(a.name for a in node.names if f"{base}.{a.name}" not in MODULES)
    return [(target, ()) for target in found] + ([(base, names)] if names else [])


def _imports(module: str) -> Iterator[Import]:
    tree = ast.parse(MODULES[module].read_text(), str(MODULES[module]))

    def walk(nodes: list[ast.stmt], module_level: bool) -> Iterator[Import]:
        for node in nodes:
            if isinstance(node, ast.Import):
                for alias in node.names:
                    yield Import(module, alias.name, node.lineno, module_level)
            elif isinstance(node, ast.ImportFrom):
                for target, names in _resolve(module, node):
                    yield Import(module, target, node.lineno, module_level, names)
            elif isinstance(node, ast.If) and _is_type_checking(node):
                yield from walk(node.body, False)
                yield from walk(node.orelse, module_level)
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                yield from walk(node.body, False)
            else:
                children = [c for c in ast.iter_child_nodes(node) if isinstance(c, ast.stmt)]
                yield from walk(children, module_level)

    yield from walk(tree.body, True)


def _layer(module: str) -> str:
    if any(module == cli or module.startswith(f"{cli}.") for cli in CLI):
        return "cli"
    return module.split(".")[0]


def _where(i: Import) -> str:
    return f"{MODULES[i.source].relative_to(ROOT)}:{i.line} imports {i.target}"


def _past_the_face(i: Import) -> bool:
    """An import into another top-level package that names a plain module, not a face."""
    return i.source.split(".")[0] != i.target.split(".")[0] and i.target not in FACES


IMPORTS = [i for module in sorted(MODULES) for i in _imports(module)]
OURS = [i for i in IMPORTS if i.target.split(".")[0] in PACKAGES]


def test_the_walk_sees_every_package_and_the_imports_between_them() -> None:
    assert {m.split(".")[0] for m in MODULES} == set(PACKAGES)
    assert len(OURS) > 500
    pairs = {(i.source.split(".")[0], i.target.split(".")[0]) for i in OURS}
    assert {("federation", "operators"), ("sim", "federation"), ("loadtests", "operators")} <= pairs


def test_imports_point_one_way() -> None:
    wrong = [
        _where(i)
        for i in OURS
        if i.target.split(".")[0] not in ALLOWED[_layer(i.source)]
        or (_layer(i.source) != "cli" and _layer(i.target) == "cli")
    ]
    assert wrong == []


def test_no_import_cycle_between_modules() -> None:
    graph = nx.DiGraph()
    graph.add_edges_from(
        (i.source, i.target)
        for i in OURS
        if i.module_level and i.target in MODULES and i.target != i.source
    )
    cycles = sorted(sorted(c) for c in nx.simple_cycles(graph))
    assert cycles == []


def test_a_cycle_would_be_found() -> None:
    """The graph check is not vacuous: a back edge closes a cycle it reports."""
    graph = nx.DiGraph([("sim.engine", "sim.expectations"), ("sim.expectations", "sim.engine")])
    assert list(nx.simple_cycles(graph))


@pytest.mark.parametrize("face", FACES)
def test_each_face_names_only_what_exists(face: str) -> None:
    module = importlib.import_module(face)
    exported = module.__all__
    assert exported and len(set(exported)) == len(exported)
    missing = [name for name in exported if not hasattr(module, name)]
    assert missing == []


def test_cross_package_imports_go_through_faces() -> None:
    """``federation``, ``sim`` (its CLI too) and ``loadtests`` reach another package only
    through an ``__init__``: its private workings can move without breaking them."""
    past = [_where(i) for i in OURS if _past_the_face(i)]
    assert not past, "\n".join(past)


def test_a_plain_module_import_would_be_found() -> None:
    """The face rule is not vacuous: a reach past a face is caught, one through it and one
    inside a package are not."""
    assert _past_the_face(Import("sim.engine", "federation.trust", 1, True, ("TrustGraph",)))
    assert not _past_the_face(Import("sim.engine", "federation", 1, True, ("TrustGraph",)))
    assert not _past_the_face(Import("sim.engine", "sim.results", 1, True, ("RunResult",)))


def test_names_taken_from_a_face_are_in_its_all() -> None:
    """A face lists what it offers: a name imported from it that ``__all__`` does not name is
    a private working reached by the back door (or a name the face forgot to export)."""
    offered = {face: set(importlib.import_module(face).__all__) for face in FACES}
    unlisted = [
        f"{_where(i)}: {', '.join(sorted(set(i.names) - offered[i.target]))}"
        for i in OURS
        if i.target in offered and not set(i.names) <= offered[i.target]
    ]
    assert not unlisted, "\n".join(unlisted)
