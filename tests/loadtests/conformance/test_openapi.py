"""Answer validation against a definition's schemas: references inlined once, same verdicts."""

from __future__ import annotations

from typing import Any

from loadtests.conformance.openapi import ApiSpec

COMMON: dict[str, Any] = {
    "components": {"schemas": {"XCorrelator": {"type": "string", "pattern": "^[a-z]+$"}}}
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


def test_a_schema_object_is_compiled_once_and_verdicts_do_not_drift() -> None:
    api = spec()
    node = api.schema("#/components/schemas/Node")
    first = api.errors({"name": 1}, node)
    assert first == ["name: 1 is not of type 'string'"]
    compiled = api._validator(node)
    assert api._validator(node) is compiled
    assert api.errors({"name": 1}, node) == first
    assert api._validator(api.schema("#/components/schemas/Node")) is not compiled
