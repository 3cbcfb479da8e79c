"""Load a YAML file into a pydantic model, with errors that name the field and its line."""

from __future__ import annotations

from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

ModelT = TypeVar("ModelT", bound=BaseModel)


class ConfigFileError(ValueError):
    """A file that does not describe a valid model; the message lists ``file:line: field: why``."""

    def __init__(self, path: str, problems: list[str]) -> None:
        self.path = path
        self.problems = problems
        super().__init__("\n".join(problems))


def load_yaml_model(
    path: str | Path, model: type[ModelT], overrides: dict[str, Any] | None = None
) -> ModelT:
    """Parse ``path`` as YAML and validate it as ``model``; ``overrides`` are dotted keys."""
    node, data = read_yaml_mapping(path)
    for key, value in (overrides or {}).items():
        set_dotted(data, key, value)
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise ConfigFileError(str(path), field_problems(path, node, error)) from error


YAML_BOOLEAN_HINT = (
    " (YAML reads an unquoted yes, no, on, off, y or n as true or false: quote it, e.g. 'NO')"
)


def field_problems(
    path: str | Path,
    node: yaml.Node | None,
    error: ValidationError,
    prefix: tuple[Any, ...] = (),
    line_for: Callable[[tuple[Any, ...]], int | None] | None = None,
) -> list[str]:
    """Each of ``error``'s problems as ``file:line: field: message``; ``line_for`` may name
    the line of a field first (a variant's override of it). Where a text was wanted and YAML
    read a boolean, the message says so: Norway's ``NO`` is YAML 1.1's false."""
    problems = []
    for item in error.errors():
        loc = prefix + tuple(item["loc"])
        field = ".".join(str(part) for part in loc) or "(top level)"
        line = (line_for(loc) if line_for is not None else None) or line_of(node, loc)
        where = f"{path}:{line}" if line else str(path)
        message = item["msg"]
        if isinstance(item.get("input"), bool) and item["type"] == "string_type":
            message += YAML_BOOLEAN_HINT
        problems.append(f"{where}: {field}: {message}")
    return problems


def read_yaml_mapping(path: str | Path) -> tuple[yaml.Node | None, dict[str, Any]]:
    """The YAML document at ``path`` as a mapping, with its node tree for line numbers."""
    source = Path(path)
    try:
        text = source.read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigFileError(str(path), [f"{path}: cannot read: {error.strerror}"]) from error
    except UnicodeDecodeError as error:
        raise ConfigFileError(str(path), [f"{path}: not UTF-8 text ({error.reason})"]) from error
    try:
        node = yaml.compose(text)
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        raise ConfigFileError(str(path), [f"{where}: not valid YAML: {error}"]) from error
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigFileError(str(path), [f"{path}:1: the top level must be a mapping"])
    repeated = duplicate_keys(node)
    if repeated:
        raise ConfigFileError(str(path), [f"{path}:{line}: {where}" for line, where in repeated])
    return node, data


def duplicate_keys(
    node: yaml.Node | None, at: str = "", seen_nodes: set[int] | None = None
) -> list[tuple[int, str]]:
    """Keys given twice in one mapping, with the line of the second: YAML keeps only the last
    silently, so a second application of the same name would replace the first unseen. Each
    node is walked once, so an alias (``*a``, even one inside its own anchor) is not walked
    again."""
    seen_nodes = set() if seen_nodes is None else seen_nodes
    if node is None or id(node) in seen_nodes:
        return []
    seen_nodes.add(id(node))
    found: list[tuple[int, str]] = []
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key, value in node.value:
            name = str(key.value)
            line = key.start_mark.line + 1
            where = f"{at}.{name}" if at else name
            if name in seen and name != "<<":
                found.append((line, f"{where}: given twice (first on line {seen[name]})"))
            seen.setdefault(name, line)
            found.extend(duplicate_keys(value, where, seen_nodes))
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            found.extend(duplicate_keys(item, f"{at}.{index}" if at else str(index), seen_nodes))
    return found


def parse_override(text: str) -> tuple[str, Any]:
    """``key.path=value`` from the command line, the value read as a YAML scalar."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ValueError(f"override {text!r} is not of the form key=value")
    return key.strip(), yaml.safe_load(raw) if raw.strip() else raw


def dotted_parts(key: str) -> list[str]:
    """The parts of a dotted path; a part in double quotes keeps its dots
    (``apis."sim-swap.check"``). An unclosed quote or an empty part is a :class:`ValueError`."""
    parts: list[str] = []
    current: list[str] = []
    quoted = False
    closed = False  # the part just ended with a closing quote: only a dot may follow
    for char in key:
        if char == '"' and (quoted or not current):
            quoted, closed = not quoted, quoted
            if not quoted and not current:
                raise ValueError(f"empty quoted part in {key!r}")
        elif char == "." and not quoted:
            if not current and not closed:
                raise ValueError(f"empty part in {key!r}")
            parts.append("".join(current))
            current, closed = [], False
        elif closed:
            raise ValueError(f"text after a closing quote in {key!r}")
        else:
            current.append(char)
    if quoted:
        raise ValueError(f"unclosed quote in {key!r}")
    if not current and not closed:
        raise ValueError(f"empty part in {key!r}")
    parts.append("".join(current))
    return parts


def _take_key(target: dict[str, Any], parts: list[str], at: int, quoted: bool) -> int:
    """How many parts from ``at`` name one key of ``target``: the longest run of them that,
    joined by dots, is a key already there (API names such as ``sim-swap.check`` are keys
    with dots), else one."""
    if not quoted:
        for end in range(len(parts), at + 1, -1):
            if ".".join(parts[at:end]) in target:
                return end - at
    return 1


def set_dotted(
    data: dict[str, Any], key: str, value: Any, *, named: Collection[str] = ()
) -> None:
    """Set ``a.b.0.c`` inside nested dicts and lists, creating mappings where missing.

    A key that holds dots is reached as it stands when it is already in the document
    (``traffic.applications.bank.apis.sim-swap.check``), or in double quotes
    (``apis."location-verification.verify"``), which also adds one.

    Under a key in ``named`` (a mapping of entries by name: operators, data centres) a path
    may add a whole entry (``data_centres.mad-3``) but not reach into one that is not there:
    with every field defaulted, ``data_centres.mad1.gateway.replicas`` would silently add a
    data centre for a typo of ``mad-1``. That raises :class:`ValueError` naming the known ones.
    """
    parts = dotted_parts(key)
    quoted = key.count('"') > 0
    target: Any = data
    parent = ""
    made = False  # the mapping under ``parent`` was made by this path (the model's default
    # stands there, unknown here: an operator without data_centres gets dc1, say)
    at = 0
    while True:
        if isinstance(target, list):
            part = parts[at]
            if at == len(parts) - 1:
                target[int(part)] = value
                return
            target = target[int(part)]
            made = False
            at += 1
            parent = part
            continue
        if not isinstance(target, dict):
            raise TypeError(f"{parent or 'the top level'} is not a mapping")
        span = _take_key(target, parts, at, quoted)
        part = ".".join(parts[at : at + span])
        at += span
        if at == len(parts):
            target[part] = value
            return
        if parent in named and part not in target and not made:
            known = ", ".join(map(str, target)) or "none"
            raise ValueError(f"no {parent} entry {part!r} (known: {known})")
        made = part not in target
        target = target.setdefault(part, {})
        parent = part


def line_of(node: yaml.Node | None, loc: tuple[Any, ...]) -> int | None:
    """The 1-based line of the YAML node at ``loc``, or of its deepest existing parent."""
    line = node.start_mark.line + 1 if node is not None else None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            match = next((v for k, v in node.value if k.value == str(part)), None)
            if match is None:
                return line
            node = match
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if part >= len(node.value):
                return line
            node = node.value[part]
        else:
            return line
        line = node.start_mark.line + 1
    return line
