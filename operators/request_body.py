"""Request bodies, read with a bound and parsed strictly, before anything else sees them.

One bounded reader and one strict JSON parser serve every endpoint that reads a body: the
gateway's CAMARA chain (its threat protection policy), the identity server, the admin APIs
and the federation's services. It sits at the root of ``operators`` because the identity
server, below the gateway, needs it too.

* :func:`read_body` stops at ``max_body_bytes`` (a declared ``Content-Length`` over it is
  refused before a byte is read; a chunked body is refused at the first byte past it) and
  gives a slow client ``read_timeout`` seconds for the whole body (408 otherwise).
* :func:`parse_json` accepts only UTF-8 without a BOM, refuses nesting deeper than
  ``max_depth`` (counted on the raw bytes, so ``json.loads`` never recurses that far), more
  than ``max_keys`` keys, a repeated key in one object, a string longer than
  ``max_string_length``, a lone UTF-16 surrogate (``"\\ud800"``: it can be neither stored nor
  answered), and the non-JSON constants ``NaN``/``Infinity``.

Parsing is orjson's (a C parser, several times faster than ``json.loads`` with hooks): a body
it accepts is checked on the parsed document (depth, keys, strings) and for repeated keys by
comparing the members in the text with the keys parsed. Anything orjson refuses, or any limit
broken, is parsed again by the standard library's strict path, so every refusal keeps its
exact message.

A refusal is a :class:`BodyRefusedError`, a :class:`~operators.errors.CamaraError` (so CAMARA apps
render it as it is) that an OAuth endpoint turns into ``invalid_request`` with :meth:`oauth`.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
import weakref
from dataclasses import dataclass
from typing import Any, TypeVar

import orjson
from pydantic import BaseModel, ValidationError
from starlette.requests import ClientDisconnect, Request

from operators.errors import CamaraError, OAuthError

_OPENERS = frozenset(b"[{")
_CLOSERS = frozenset(b"]}")
_QUOTE = ord('"')
_BACKSLASH = ord("\\")
_BOMS = (b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")
_CODES = {
    400: "INVALID_ARGUMENT",
    408: "REQUEST_TIMEOUT",
    413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
}


@dataclass(frozen=True)
class ThreatLimits:
    """Limits in the spirit of API gateways' JSON threat protection policies."""

    max_body_bytes: int = 16 * 1024
    max_depth: int = 12
    max_keys: int = 512
    max_string_length: int = 4096
    allowed_content_types: tuple[str, ...] = ("application/json",)
    read_timeout: float = 10.0
    """Seconds a client has to send its whole body once the request head has arrived."""


class BodyRefusedError(CamaraError):
    """A body refused by threat protection; rendered as CAMARA, or as OAuth by :meth:`oauth`."""

    def __init__(self, status: int, message: str) -> None:
        headers = {"Connection": "close"} if status in (408, 413) else None
        super().__init__(status, _CODES.get(status, "INVALID_ARGUMENT"), message, headers)

    def oauth(self) -> OAuthError:
        """The same refusal for an OAuth endpoint: ``invalid_request`` with this status."""
        return OAuthError("invalid_request", self.message, self.status)


def media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


async def read_body(request: Request, limits: ThreatLimits) -> bytes:
    """The request's body, read with a bound on its size and on the time it takes to arrive.

    Over ``max_body_bytes`` is a 413 at the limit (by the declared length before reading,
    or at the first chunk past it); a body not complete within ``read_timeout`` seconds (a
    client that sent less than its ``Content-Length``) is a 408. The body is kept on the
    request, so a later ``await request.body()`` gets the same bytes without reading again.
    """
    cached: bytes | None = getattr(request, "_body", None)
    if cached is not None:
        if len(cached) > limits.max_body_bytes:
            raise _too_large(limits)
        return cached
    declared = request.headers.get("content-length")
    if declared is not None:
        if not (declared.isascii() and declared.strip().isdigit()):
            raise BodyRefusedError(400, "Content-Length is not a number.")
        if int(declared) > limits.max_body_bytes:
            raise _too_large(limits)  # refused before a byte of the body is read
    task = asyncio.current_task()
    deadlines = _deadlines_of(asyncio.get_running_loop()) if task is not None else None
    if deadlines is not None and task is not None:
        deadlines.watch(task, limits.read_timeout)
    try:
        body = await _receive_body(request, limits)
    except asyncio.CancelledError as error:
        if deadlines is None or task is None or not deadlines.expired(task):
            raise
        if task.uncancel() > 0:  # cancelled by someone else too: that one wins
            raise
        raise BodyRefusedError(
            408, f"The request body did not arrive within {limits.read_timeout:g} s."
        ) from error
    except ClientDisconnect as error:
        raise BodyRefusedError(400, "The client went away before its body was complete.") from error
    finally:
        if deadlines is not None and task is not None:
            deadlines.forget(task)
    request._body = body  # Starlette keeps the read body here
    return body


class _ReadDeadlines:
    """The body reads in flight on one event loop and when each must end, with one timer at
    the earliest deadline that cancels every read past its own.

    ``asyncio.timeout`` around each read did the same with a timer per request, about 14 µs
    each (measured on uvloop), paid by every call although almost every body has arrived with
    its head. Here a read costs two dictionary updates; the timer moves only when a read must
    end before the one it waits for (never, while every read has the same limit).
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        # weakly: this object is the value of a table keyed weakly by its loop, and a strong
        # reference back would keep every loop that ever read a body alive
        self._loop = weakref.ref(loop)
        self.ends: dict[asyncio.Task[Any], float] = {}
        self.overdue: set[asyncio.Task[Any]] = set()
        self.timer: asyncio.TimerHandle | None = None

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        loop = self._loop()
        if loop is None:  # only a closed loop's callbacks could ask, and they never run
            raise RuntimeError("the event loop of these body reads is gone")
        return loop

    def watch(self, task: asyncio.Task[Any], seconds: float) -> None:
        end = self.loop.time() + seconds
        self.ends[task] = end
        if self.timer is None or end < self.timer.when():
            self._arm(end)

    def forget(self, task: asyncio.Task[Any]) -> None:
        self.ends.pop(task, None)
        self.overdue.discard(task)

    def expired(self, task: asyncio.Task[Any]) -> bool:
        """Whether this read was cancelled for running past its deadline."""
        return task in self.overdue

    def _arm(self, when: float) -> None:
        if self.timer is not None:
            self.timer.cancel()
        self.timer = self.loop.call_at(when, self._expire)

    def _expire(self) -> None:
        self.timer = None
        now = self.loop.time()
        for task, end in list(self.ends.items()):
            if end <= now:
                del self.ends[task]
                self.overdue.add(task)
                task.cancel()
        if self.ends:
            self._arm(min(self.ends.values()))


_loops: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _ReadDeadlines] = (
    weakref.WeakKeyDictionary()
)


def _deadlines_of(loop: asyncio.AbstractEventLoop) -> _ReadDeadlines:
    deadlines = _loops.get(loop)
    if deadlines is None:
        _forget_closed_loops()
        deadlines = _loops[loop] = _ReadDeadlines(loop)
    return deadlines


def _forget_closed_loops() -> None:
    """Drop the deadlines of loops that were closed: a timer still pending there (a handle
    holds its loop) would keep the loop and everything it references alive for good. Done
    when a new loop reads its first body, so it costs nothing per call (one loop serves a
    process; tests make many)."""
    for loop, deadlines in list(_loops.items()):
        if loop.is_closed():
            deadlines.timer = None
            deadlines.ends.clear()
            del _loops[loop]


async def _receive_body(request: Request, limits: ThreatLimits) -> bytes:
    """The body's ASGI messages, joined, refused at the first byte past the limit (what
    ``Request.stream`` does, without its generator: one message is the common case)."""
    receive = request.receive
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        kind = message["type"]
        if kind == "http.request":
            chunk = message.get("body", b"")
            if chunk:
                size += len(chunk)
                if size > limits.max_body_bytes:
                    raise _too_large(limits)
                chunks.append(chunk)
            if not message.get("more_body", False):
                break
        elif kind == "http.disconnect":
            raise ClientDisconnect()
    request._stream_consumed = True
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _too_large(limits: ThreatLimits) -> BodyRefusedError:
    return BodyRefusedError(413, f"Request body exceeds {limits.max_body_bytes} bytes.")


async def read_json(request: Request, limits: ThreatLimits) -> Any:
    """The request's JSON body (None when empty), read by :func:`read_body` and checked by
    the content type and :func:`parse_json`."""
    body = await read_body(request, limits)
    if not body:
        return None
    if media_type(request.headers.get("content-type")) not in limits.allowed_content_types:
        raise BodyRefusedError(415, "The request body must be sent as application/json.")
    return parse_json(body, limits)


async def read_json_object(
    request: Request, limits: ThreatLimits, *, empty_is_object: bool = False
) -> dict[str, Any]:
    """:func:`read_json` for endpoints that take a JSON object (an empty body is ``{}`` when
    ``empty_is_object``, refused otherwise)."""
    document = await read_json(request, limits)
    if document is None and empty_is_object:
        return {}
    if not isinstance(document, dict):
        raise BodyRefusedError(400, "The body must be a JSON object.")
    return document


Model = TypeVar("Model", bound=BaseModel)


async def read_model(request: Request, model: type[Model], limits: ThreatLimits) -> Model:
    """A JSON object body validated by ``model``: what FastAPI's body parameters do, but
    through the bounded reader and the strict parser; a 400 names the first field at fault."""
    payload = await read_json_object(request, limits)
    try:
        return model.model_validate(payload)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "body"
        raise BodyRefusedError(400, f"{where}: {first['msg']}") from error


def openapi_body(model: type[BaseModel]) -> dict[str, Any]:
    """``openapi_extra`` for a route that reads its body with :func:`read_model`, so the API
    description still shows the body FastAPI no longer parses itself."""
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    schema.pop("$defs", None)
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


class _RefusalError(ValueError):
    """Raised from inside ``json.loads``'s hooks; becomes a :class:`BodyRefusedError`."""


_STRING = re.compile(rb'"(?:[^"\\\\]|\\\\.)*"', re.DOTALL)
"""A JSON string literal in the raw text (escapes included): what :func:`members` skips."""


_WIDEST_INTEGER = 2.0**63
"""orjson reads an integer literal beyond 64 bits as a float; ``json.loads`` keeps it whole."""


def members(raw: bytes) -> int:
    """The object members written in a JSON text: its colons outside string literals."""
    if b'"' not in raw:
        return raw.count(b":")
    return _STRING.sub(b"", raw).count(b":")


def fast_json(raw: bytes, max_depth: int, max_keys: int, max_string: int | None) -> Any:
    """The document in ``raw`` when orjson parses it and it is plainly fine (within the
    limits, no repeated key, no number out of range), else :data:`NOT_FAST`; the caller then
    takes the strict path, which names the problem."""
    try:
        document = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return NOT_FAST
    keys = 0
    stack: list[tuple[Any, int]] = [(document, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            depth += 1
            if depth > max_depth:
                return NOT_FAST
            keys += len(item)
            for key, value in item.items():
                if max_string is not None and len(key) > max_string:
                    return NOT_FAST
                stack.append((value, depth))
        elif isinstance(item, list):
            depth += 1
            if depth > max_depth:
                return NOT_FAST
            stack.extend((value, depth) for value in item)
        elif isinstance(item, str):
            if max_string is not None and len(item) > max_string:
                return NOT_FAST
        elif isinstance(item, float) and (math.isinf(item) or abs(item) >= _WIDEST_INTEGER):
            return NOT_FAST  # out of range, or an integer too wide for orjson (read as float)
    if keys > max_keys or keys != members(raw):
        return NOT_FAST  # a repeated key: orjson kept the last, the strict path refuses
    return document


NOT_FAST: Any = object()
"""What :func:`fast_json` answers when the body needs the strict path."""


def parse_json(raw: bytes, limits: ThreatLimits) -> Any:
    """Strict JSON (RFC 8259 as I-JSON, RFC 7493, reads it): UTF-8, no BOM, bounded, unique
    keys, only encodable strings; a :class:`BodyRefusedError` (400) names what was wrong."""
    if not raw.startswith(_BOMS) and not (len(raw) >= 2 and b"\x00" in raw[:4]):
        document = fast_json(raw, limits.max_depth, limits.max_keys, limits.max_string_length)
        if document is not NOT_FAST:
            return document
    return _parse_json_strictly(raw, limits)


def _parse_json_strictly(raw: bytes, limits: ThreatLimits) -> Any:
    """:func:`parse_json` by the standard library, with hooks: every refusal named."""
    if raw.startswith(_BOMS) or (len(raw) >= 2 and b"\x00" in raw[:4]):
        raise BodyRefusedError(400, "The JSON body must be UTF-8 without a byte order mark.")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise BodyRefusedError(400, "The JSON body is not valid UTF-8.") from error
    depth = nesting_depth(raw)
    if depth > limits.max_depth:
        raise BodyRefusedError(400, f"JSON nesting depth {depth} exceeds {limits.max_depth}.")
    keys = 0

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        nonlocal keys
        keys += len(items)
        if keys > limits.max_keys:
            raise _RefusalError(f"JSON body has more than {limits.max_keys} keys.")
        document = dict(items)
        if len(document) != len(items):
            raise _RefusalError("A JSON object repeats a key.")
        return document

    def constant(name: str) -> Any:
        raise _RefusalError(f"{name} is not a JSON value.")

    def number(literal: str) -> float:
        value = float(literal)
        if math.isinf(value):
            raise _RefusalError("A JSON number is out of range.")
        return value

    try:
        document = json.loads(
            text, object_pairs_hook=pairs, parse_constant=constant, parse_float=number
        )
    except _RefusalError as refusal:
        raise BodyRefusedError(400, str(refusal)) from refusal
    except (ValueError, RecursionError) as error:
        raise BodyRefusedError(400, "Request body is not valid JSON.") from error
    problem = _string_problem(document, limits.max_string_length)
    if problem:
        raise BodyRefusedError(400, problem)
    return document


def nesting_depth(body: bytes) -> int:
    """The deepest bracket nesting outside string literals, in one pass over the bytes."""
    depth = deepest = 0
    in_string = escaped = False
    for byte in body:
        if in_string:
            if escaped:
                escaped = False
            elif byte == _BACKSLASH:
                escaped = True
            elif byte == _QUOTE:
                in_string = False
        elif byte == _QUOTE:
            in_string = True
        elif byte in _OPENERS:
            depth += 1
            deepest = max(deepest, depth)
        elif byte in _CLOSERS:
            depth -= 1
    return deepest


def unencodable(document: Any) -> bool:
    """Whether a string anywhere in ``document`` (key or value) cannot be encoded as UTF-8
    (a lone surrogate): such a value can be neither stored nor sent back, so it never lands."""
    return _string_problem(document, None) is not None


def _string_problem(document: Any, max_length: int | None) -> str | None:
    """What is wrong with the strings of ``document``, walked iteratively, or None."""
    stack = [document]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, str):
            if max_length is not None and len(item) > max_length:
                return f"A JSON string is longer than {max_length} characters."
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return "A JSON string holds a lone UTF-16 surrogate."
    return None
