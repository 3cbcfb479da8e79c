"""The official CAMARA OpenAPI documents as the conformance engine needs them.

An :class:`ApiSpec` answers three questions a scenario asks of its YAML: which operation an
``operationId`` names (method, full path, scopes), what a valid request body looks like (built
from the schema, preferring the definition's own examples) and whether a response body complies
with a schema. Validation uses ``jsonschema`` with every ``$ref`` resolved inside the document,
falling back to ``CAMARA_common.yaml`` for schemas an API only names (``XCorrelator``).
OpenAPI 3.0's ``nullable`` is translated to JSON Schema before validating.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import fastjsonschema
import yaml
from jsonschema import Draft4Validator, FormatChecker
from referencing import Registry
from referencing.jsonschema import DRAFT4

__all__ = ["ApiSpec", "Operation", "load_spec"]

_COMMON_URI = "urn:camara:common"
_CHECKERS_KEPT = 512
"""Checkers an :class:`ApiSpec` keeps, one per schema it was asked about."""
_DRAFT_4 = "http://json-schema.org/draft-04/schema#"
_INLINED = "x-inlined"
"""Where an inlined schema keeps the targets of its recursive references."""


@dataclass(frozen=True)
class Operation:
    """One operation of an API: where it lives and what it needs."""

    operation_id: str
    method: str
    path: str
    """Full path including the API's base path, with ``{param}`` templates."""
    scopes: tuple[str, ...]
    request_schema: dict[str, Any] | None
    responses: dict[str, Any] = field(default_factory=dict)


def _nullable_to_json_schema(node: Any) -> Any:
    """OpenAPI 3.0 ``nullable: true`` means ``null`` is allowed; JSON Schema needs the type."""
    if isinstance(node, dict):
        out = {key: _nullable_to_json_schema(value) for key, value in node.items()}
        if out.pop("nullable", False) is True:
            kind = out.get("type")
            if isinstance(kind, str):
                out["type"] = [kind, "null"]
            elif "enum" in out:
                out["enum"] = [*out["enum"], None]
            elif "$ref" in out or "allOf" in out or "oneOf" in out or "anyOf" in out:
                out = {"anyOf": [out, {"type": "null"}]}
        return out
    if isinstance(node, list):
        return [_nullable_to_json_schema(item) for item in node]
    return node


def _format_checker() -> FormatChecker:
    """Formats CAMARA uses, checked without optional packages (date-time as RFC 3339)."""
    checker = FormatChecker()

    @checker.checks("date-time", raises=ValueError)
    def _date_time(value: object) -> bool:
        if not isinstance(value, str):
            return True
        if not re.match(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$", value):
            raise ValueError(f"{value!r} is not an RFC 3339 date-time")
        datetime.fromisoformat(value.replace("Z", "+00:00"))
        return True

    @checker.checks("date", raises=ValueError)
    def _date(value: object) -> bool:
        if isinstance(value, str):
            date.fromisoformat(value)
        return True

    return checker


@dataclass(frozen=True)
class _Checker:
    """One response schema, inlined and compiled twice.

    The load test checks every answer against its schema, so this is its hot path. Building
    a ``jsonschema`` validator and resolving each ``$ref`` through the registry on every
    answer cost 60-150 µs, a third of a Locust worker's CPU in the federation run; a
    validator of the inlined schema, kept, 20-45 µs. ``fastjsonschema`` compiles the same
    inlined schema to Python and says whether an answer complies in 1-2 µs; only an answer
    it refuses is validated again by ``jsonschema``, whose list of every error (with paths
    and messages) is the verdict. So the two can differ only when ``fastjsonschema`` passes
    an answer that ``jsonschema`` would refuse: ``test_openapi`` checks every definition's
    schemas for that.
    """

    schema: dict[str, Any]
    """The schema asked about, held so that its ``id`` names no other while cached."""
    validator: Draft4Validator
    passes: Callable[[Any], Any] | None
    """Raises ``JsonSchemaException`` for an answer that does not comply (None: the schema
    did not compile, and ``validator`` alone decides)."""

    def errors(self, instance: Any) -> list[str]:
        if self.passes is not None:
            try:
                self.passes(instance)
            except Exception:  # refused, or the fast path failed: jsonschema decides
                pass
            else:
                return []
        return [
            f"{'/'.join(str(p) for p in error.absolute_path) or '<root>'}: {error.message}"
            for error in self.validator.iter_errors(instance)
        ]


def _compiled(schema: dict[str, Any], formats: FormatChecker) -> Callable[[Any], Any] | None:
    """``schema`` compiled by ``fastjsonschema`` as Draft 4, with the same format checks as
    ``formats``; it must never fill in defaults (it would change the answer checked).

    None for a schema it would judge differently or cannot compile: ``multipleOf`` (it
    divides as ``Decimal``, jsonschema as float, so 19.99 is a multiple of 0.01 for one and
    not the other), or a pattern Python's ``re`` does not take."""
    if _uses(schema, "multipleOf"):
        return None
    own = {
        name: (lambda value, name=name: formats.conforms(value, name)) for name in formats.checkers
    }
    try:
        return fastjsonschema.compile(
            {**schema, "$schema": _DRAFT_4}, formats=own, use_default=False
        )
    except Exception:  # any schema it cannot compile is left to jsonschema
        return None


def _uses(node: Any, keyword: str) -> bool:
    if isinstance(node, dict):
        return keyword in node or any(_uses(value, keyword) for value in node.values())
    if isinstance(node, list):
        return any(_uses(item, keyword) for item in node)
    return False


def _base(uri: str) -> str:
    """The document part of an absolute reference."""
    return uri.split("#", 1)[0]


class ApiSpec:
    """One CAMARA API definition, with ``CAMARA_common.yaml`` as the fallback for its refs."""

    def __init__(self, name: str, document: dict[str, Any], common: dict[str, Any] | None) -> None:
        self.name = name
        self.document = _nullable_to_json_schema(document)
        self.common = _nullable_to_json_schema(common or {})
        self.uri = f"urn:camara:{name}"
        registry: Registry[Any] = Registry()
        registry = registry.with_resource(self.uri, DRAFT4.create_resource(self.document))
        self.registry = registry.with_resource(_COMMON_URI, DRAFT4.create_resource(self.common))
        self.format_checker = _format_checker()
        server = (document.get("servers") or [{"url": ""}])[0]["url"]
        self.base_path = re.sub(r"^\{apiRoot\}", "", server).rstrip("/")
        self.operations = dict(self._operations())
        self._checkers: dict[object, _Checker] = {}

    def _operations(self) -> Iterator[tuple[str, Operation]]:
        for path, item in (self.document.get("paths") or {}).items():
            for method, op in item.items():
                if method.lower() not in {"get", "post", "put", "patch", "delete"}:
                    continue
                scopes: list[str] = []
                for requirement in op.get("security") or []:
                    for values in requirement.values():
                        scopes.extend(v for v in values if v not in scopes)
                body = op.get("requestBody", {})
                body = self.deref(body)
                schema = body.get("content", {}).get("application/json", {}).get("schema")
                yield (
                    op["operationId"],
                    Operation(
                        operation_id=op["operationId"],
                        method=method.upper(),
                        path=self.base_path + path,
                        scopes=tuple(scopes),
                        request_schema=schema,
                        responses=op.get("responses", {}),
                    ),
                )

    # -- references ------------------------------------------------------------------------

    def pointer(self, ref: str, within: str | None = None) -> tuple[dict[str, Any], str] | None:
        """The document (API or common) that defines ``ref`` and the JSON pointer in it: the
        API's first, or the one whose URI is ``within`` (where the reference was written)."""
        fragment = ref.split("#", 1)[-1] if "#" in ref else ref
        fragment = "/" + fragment.lstrip("/")
        documents = [(self.document, self.uri), (self.common, _COMMON_URI)]
        if within == _COMMON_URI:
            documents.reverse()
        for document, uri in documents:
            node: Any = document
            found: list[str] = []
            for part in fragment.strip("/").split("/"):
                key = _key_in(node, part)
                if key is None:
                    node = None
                    break
                found.append(key)
                node = node[key]
            if node is not None:
                return document, f"{uri}#/{'/'.join(found)}"
        return None

    def deref(self, node: Any, depth: int = 0) -> Any:
        """Follow ``$ref`` chains (only at the top of ``node``) to the referenced object."""
        while isinstance(node, dict) and "$ref" in node and depth < 20:
            found = self.pointer(node["$ref"])
            if found is None:
                raise KeyError(f"{self.name}: unresolvable $ref {node['$ref']}")
            document, full = found
            node = self._get(document, full.split("#", 1)[1])
            depth += 1
        return node

    @staticmethod
    def _get(document: dict[str, Any], pointer: str) -> Any:
        node: Any = document
        for part in pointer.strip("/").split("/"):
            node = node[part]
        return node

    def schema(self, ref: str) -> dict[str, Any]:
        """A schema by reference (``#/components/schemas/X`` or ``/components/schemas/X``)."""
        found = self.pointer(ref)
        if found is None:
            raise KeyError(f"{self.name}: no schema at {ref}")
        return {"$ref": found[1]}

    def errors(self, instance: Any, schema: dict[str, Any]) -> list[str]:
        """Every way ``instance`` breaks ``schema`` (empty when it complies)."""
        return self._checker(schema).errors(instance)

    def _checker(self, schema: dict[str, Any]) -> _Checker:
        """The checker of ``schema``, built once per schema object (or per reference, for the
        ``{"$ref": ...}`` a conformance step builds on every call). A schema must therefore not
        be changed once it has been checked against: its checker would not see the change."""
        key: object = id(schema)
        if len(schema) == 1 and isinstance(schema.get("$ref"), str):
            key = schema["$ref"]
        cached = self._checkers.get(key)
        if cached is not None and (cached.schema is schema or isinstance(key, str)):
            return cached
        if len(self._checkers) >= _CHECKERS_KEPT:
            self._checkers.clear()
        inlined = self._inlined(schema)
        checker = _Checker(
            schema,
            Draft4Validator(inlined, registry=self.registry, format_checker=self.format_checker),
            _compiled(inlined, self.format_checker),
        )
        self._checkers[key] = checker
        return checker

    def _inlined(self, schema: dict[str, Any]) -> dict[str, Any]:
        """``schema`` with every ``$ref`` replaced by what it names, as Draft 4 reads it (a
        ``$ref``'s siblings are ignored). A recursive reference points instead into a
        section of the root, ``x-inlined``, which holds each recursive target inlined once:
        self-contained, so the target's own references still find the common document."""
        slots: dict[str, int] = {}
        root = self._inline(schema, (), slots, self.uri)
        if not isinstance(root, dict):
            root = {"allOf": [root]}
        targets: list[Any] = []
        while len(targets) < len(slots):
            full = next(name for name, slot in slots.items() if slot == len(targets))
            document, pointer = self._located(full)
            targets.append(self._inline(self._get(document, pointer), (full,), slots, _base(full)))
        if targets:
            root[_INLINED] = targets
        return root

    def _inline(self, node: Any, chain: tuple[str, ...], slots: dict[str, int], within: str) -> Any:
        """``node``, written in the document ``within``, with its references inlined: a local
        reference is looked up in that document first, as a validator resolves it."""
        if isinstance(node, list):
            return [self._inline(item, chain, slots, within) for item in node]
        if not isinstance(node, dict):
            return node
        ref = node.get("$ref")
        if isinstance(ref, str):
            if ref.startswith(("#", "/")):
                found = self.pointer(ref, within)
            else:
                found = self._pointer_of(ref)
            if found is None:
                return node  # unresolvable here: left for the registry to report
            document, full = found
            if full in chain:
                slot = slots.setdefault(full, len(slots))
                return {"$ref": f"#/{_INLINED}/{slot}"}
            target = self._get(document, full.split("#", 1)[1])
            return self._inline(target, (*chain, full), slots, _base(full))
        return {key: self._inline(value, chain, slots, within) for key, value in node.items()}

    def _located(self, full: str) -> tuple[dict[str, Any], str]:
        found = self._pointer_of(full)
        assert found is not None  # every slot was named by a reference found in a document
        return found[0], full.split("#", 1)[1]

    def _pointer_of(self, uri: str) -> tuple[dict[str, Any], str] | None:
        """An absolute reference (``urn:camara:...#/...``) to one of the two documents."""
        base, _, fragment = uri.partition("#")
        for document, own in ((self.document, self.uri), (self.common, _COMMON_URI)):
            if base == own:
                try:
                    self._get(document, fragment)
                except (KeyError, IndexError, TypeError):
                    return None  # names nothing: left for the registry to report when reached
                return document, f"{own}#{fragment}"
        return None

    def response_schema(self, operation: Operation, status: int) -> dict[str, Any] | None:
        """The schema the definition declares for ``status`` (None when it declares none)."""
        response = operation.responses.get(str(status)) or operation.responses.get("default")
        if response is None:
            return None
        response = self.deref(response)
        content = response.get("content", {})
        media = content.get("application/json") or next(iter(content.values()), None)
        if media is None:
            return None
        return media.get("schema")

    # -- generation ------------------------------------------------------------------------

    def example(
        self,
        schema: dict[str, Any] | None,
        values: Callable[[str, dict[str, Any]], Any] | None = None,
        *,
        name: str = "",
        optional: bool = False,
    ) -> Any:
        """A minimal instance of ``schema``: required properties only (all when ``optional``).

        ``values(name, schema)`` may supply a value for a named property (a test number for
        ``phoneNumber``, an existing QoS profile); returning ``...`` means "no opinion".
        """
        return self._example(schema or {}, values, name, optional, 0)

    def _example(
        self,
        schema: dict[str, Any],
        values: Callable[[str, dict[str, Any]], Any] | None,
        name: str,
        optional: bool,
        depth: int,
        *,
        follow: bool = True,
    ) -> Any:
        schema = self.deref(schema)
        if values is not None and name:
            chosen = values(name, schema)
            if chosen is not ...:
                return copy.deepcopy(chosen)
        if depth > 8:
            return None
        if "allOf" in schema:
            merged: dict[str, Any] = {}
            for part in schema["allOf"]:
                value = self._example(part, values, name, optional, depth + 1, follow=False)
                if isinstance(value, dict):
                    merged.update(value)
                else:
                    return value
            own = {k: v for k, v in schema.items() if k != "allOf"}
            if own.get("properties"):
                extra = self._example(own, values, name, optional, depth + 1)
                if isinstance(extra, dict):
                    merged.update(extra)
            return merged
        mapping = (schema.get("discriminator") or {}).get("mapping")
        if mapping and follow:
            target = {"$ref": next(iter(mapping.values()))}
            return self._example(target, values, name, optional, depth + 1, follow=False)
        for key in ("oneOf", "anyOf"):
            if key in schema:
                first = self.deref(schema[key][0])
                if "properties" not in first and "type" not in first and "$ref" not in first:
                    # an alternative that only names required properties of the parent
                    rest = {k: v for k, v in schema.items() if k != key}
                    required = [*rest.get("required", []), *first.get("required", [])]
                    rest["required"] = required
                    return self._example(rest, values, name, optional, depth + 1, follow=follow)
                return self._example(first, values, name, optional, depth + 1)
        if "example" in schema and schema.get("type") != "object":
            return copy.deepcopy(schema["example"])
        if "default" in schema:
            return copy.deepcopy(schema["default"])
        if "enum" in schema:
            return schema["enum"][0]
        kind = schema.get("type")
        if isinstance(kind, list):
            kind = next((k for k in kind if k != "null"), None)
        if kind == "object" or "properties" in schema:
            wanted = set(schema.get("required", []))
            out: dict[str, Any] = {}
            for prop, sub in (schema.get("properties") or {}).items():
                if prop in wanted or optional:
                    out[prop] = self._example(sub, values, prop, False, depth + 1)
            if not out and "example" in schema and isinstance(schema["example"], dict):
                return copy.deepcopy(schema["example"])
            properties = schema.get("properties") or {}
            if not out and properties and (schema.get("minProperties") or "anyOf" in schema):
                prop, sub = next(iter(properties.items()))
                out[prop] = self._example(sub, values, prop, False, depth + 1)
            return out
        if kind == "array":
            item = self._example(schema.get("items", {}), values, name, optional, depth + 1)
            return [item] * max(1, schema.get("minItems", 1))
        if kind == "integer":
            return int(schema.get("minimum", 1))
        if kind == "number":
            return float(schema.get("minimum", 1))
        if kind == "boolean":
            return True
        if schema.get("format") == "date-time":
            return "2024-01-01T00:00:00Z"
        if schema.get("format") == "date":
            return "2000-01-01"
        return "x" * max(1, int(schema.get("minLength", 1)))


def load_spec(path: Path, common: Path | None = None) -> ApiSpec:
    """Read one API's YAML (and the common one) into an :class:`ApiSpec`."""
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    shared = (
        yaml.safe_load(common.read_text(encoding="utf-8")) if common and common.exists() else {}
    )
    return ApiSpec(path.stem, document, shared)


def _key_in(node: Any, part: str) -> str | None:
    """``part`` as a key of ``node``; failing that, the one key equal to it but for case
    (feature files write ``retrieveStatusResponseBody`` for ``RetrieveStatusResponseBody``)."""
    if not isinstance(node, dict):
        return None
    if part in node:
        return part
    matches = [k for k in node if isinstance(k, str) and k.lower() == part.lower()]
    return matches[0] if len(matches) == 1 else None
