"""Answer validation against a definition's schemas: references inlined once, same verdicts."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from jsonschema import Draft4Validator

from loadtests.camara_definitions import camara_dir
from loadtests.conformance.openapi import ApiSpec, load_spec

COMMON: dict[str, Any] = {
    "components": {
        "schemas": {
            "XCorrelator": {"type": "string", "pattern": "^[a-z]+$"},
            "Wrapper": {
                "type": "object",
                "properties": {"code": {"$ref": "#/components/schemas/Code"}},
            },
            "Code": {"type": "string"},
        }
    }
}
DOCUMENT: dict[str, Any] = {
    "openapi": "3.0.3",
    "paths": {},
    "components": {
        "schemas": {
            "Node": {
                "type": "object",
                "required": ["name"],
                "properties": {
                    "name": {"$ref": "#/components/schemas/XCorrelator"},
                    "children": {"type": "array", "items": {"$ref": "#/components/schemas/Node"}},
                    "when": {"type": "string", "format": "date-time", "nullable": True},
                },
            },
            "Shadowed": {"$ref": "#/components/schemas/Node", "type": "integer"},
            "Code": {"type": "integer"},
        }
    },
}


def spec() -> ApiSpec:
    return ApiSpec("tree", DOCUMENT, COMMON)


def test_a_recursive_schema_is_checked_at_every_depth() -> None:
    api = spec()
    node = api.schema("#/components/schemas/Node")
    good = {"name": "root", "children": [{"name": "leaf", "children": [{"name": "deep"}]}]}
    assert api.errors(good, node) == []
    bad = {"name": "root", "children": [{"name": "leaf", "children": [{"name": "DEEP"}]}]}
    assert api.errors(bad, node) == ["children/0/children/0/name: 'DEEP' does not match '^[a-z]+$'"]


def test_references_into_the_common_document_and_formats_still_apply() -> None:
    api = spec()
    node = api.schema("/components/schemas/Node")
    assert api.errors({"name": "x", "when": None}, node) == []
    (error,) = api.errors({"name": "x", "when": "yesterday"}, node)
    assert error.startswith("when: ") and "date-time" in error
    assert api.errors({"children": []}, node) == ["<root>: 'name' is a required property"]


def test_siblings_of_a_reference_are_ignored_as_draft_4_says() -> None:
    api = spec()
    shadowed = api.schema("#/components/schemas/Shadowed")
    assert api.errors({"name": "x"}, shadowed) == []
    assert api.errors(5, shadowed) == ["<root>: 5 is not of type 'object'"]


def test_a_reference_inside_the_common_document_is_looked_up_there_first() -> None:
    api = spec()
    wrapper = api.schema("#/components/schemas/Wrapper")  # only the common document has it
    assert api.errors({"code": "A"}, wrapper) == []  # the common Code, not the API's
    assert api.errors({"code": 1}, wrapper) == ["code: 1 is not of type 'string'"]
    assert api.errors(1, api.schema("#/components/schemas/Code")) == []  # the API's own


def test_what_the_fast_path_would_judge_otherwise_is_left_to_jsonschema() -> None:
    api = spec()
    cents = {"type": "number", "multipleOf": 0.01}
    assert api._checker(cents).passes is None
    everything = [e.message for e in Draft4Validator(cents).iter_errors(19.99)]
    assert len(api.errors(19.99, cents)) == len(everything)
    unicode = {"type": "object", "properties": {"name": {"type": "string", "pattern": "\\p{L}"}}}
    assert api._checker(unicode).passes is None  # Python's re cannot compile \p{L}
    assert api.errors({}, unicode) == []


def test_a_reference_to_nothing_fails_only_when_reached() -> None:
    api = spec()
    schema = {"anyOf": [{"type": "string"}, {"$ref": "urn:camara:tree#/components/schemas/None"}]}
    assert api.errors("fine", schema) == []


def test_a_schema_object_is_compiled_once_and_verdicts_do_not_drift() -> None:
    api = spec()
    node = api.schema("#/components/schemas/Node")
    first = api.errors({"name": 1}, node)
    assert first == ["name: 1 is not of type 'string'"]
    compiled = api._checker(node)
    assert compiled.passes is not None  # the fast path compiled
    assert api._checker(node) is compiled
    assert api.errors({"name": 1}, node) == first
    # the same reference, asked again as a new object (as a conformance step does)
    assert api._checker(api.schema("#/components/schemas/Node")) is compiled
    inline = {"type": "object", "properties": {"name": {"type": "string"}}}
    assert api._checker(inline) is not api._checker(dict(inline))


def test_checking_an_answer_never_changes_it() -> None:
    api = spec()
    schema = {"type": "object", "properties": {"kind": {"type": "string", "default": "x"}}}
    answer: dict[str, Any] = {}
    assert api.errors(answer, schema) == []
    assert answer == {}


def answers_to_try(api: ApiSpec, schema: dict[str, Any]) -> list[Any]:
    """A definition's example answer, and that answer broken one property at a time."""
    example = api.example(schema, optional=True)
    tried: list[Any] = [example, {}, None, [], {"x": 1}, "s", 0]
    if isinstance(example, dict):
        for name in example:
            for wrong in (12345, 1.5, "2024-13-45T00:00:00Z", "not a date", None, [], {"a": 1}):
                tried.append({**example, name: wrong})
            tried.append({k: v for k, v in example.items() if k != name})
    return tried


def test_the_fast_path_passes_only_what_jsonschema_passes() -> None:
    """The verdict is jsonschema's: fastjsonschema may only skip it for an answer that
    jsonschema also finds faultless. Checked on every response schema of every definition."""
    root = camara_dir()
    common = root / "commonalities" / "CAMARA_common.yaml"
    definitions = sorted(p for p in root.rglob("*.yaml") if p.name != "CAMARA_common.yaml")
    if not definitions or not common.exists():
        pytest.skip(f"no CAMARA definitions in {root}")
    checked = 0
    for path in definitions:
        document = yaml.safe_load(path.read_text())
        if not isinstance(document, dict) or "paths" not in document:
            continue
        api = load_spec(path, common)
        for operation in api.operations.values():
            for status in operation.responses:
                if not status.isdigit():
                    continue
                schema = api.response_schema(operation, int(status))
                if schema is None:
                    continue
                checker = api._checker(schema)
                assert checker.passes is not None, (path.name, operation.operation_id, status)
                for answer in answers_to_try(api, schema):
                    everything = [e.message for e in checker.validator.iter_errors(answer)]
                    verdict = api.errors(answer, schema)
                    assert len(verdict) == len(everything), (operation.operation_id, answer)
                    checked += 1
    assert checked > 1000
