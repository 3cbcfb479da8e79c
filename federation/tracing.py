"""Who called whom: hops between federation parties, recorded as they happen.

The aggregator and each operator's global load balancer report every hop they make (a token
exchange, a Telco Finder search, a forwarded CAMARA call, a data centre leaving the rotation)
to a :data:`Tracer`. ``ogsim demo`` prints them live and turns them into a sequence diagram;
everything else passes :func:`no_trace`. Nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Hop:
    """One message from ``source`` to ``target``: what it was, its status and its latency."""

    source: str
    target: str
    action: str
    status: str = ""
    millis: float = 0.0
    note: str = ""

    def line(self) -> str:
        """One human line: ``hub → telco-es  POST /sim-swap/v2/check  200  (3 ms)``."""
        status = f"  {self.status}" if self.status else ""
        millis = f"  ({self.millis:.0f} ms)" if self.millis else ""
        note = f"  — {self.note}" if self.note else ""
        return f"{self.source} → {self.target}  {self.action}{status}{millis}{note}"


Tracer = Callable[[Hop], None]


def no_trace(_: Hop) -> None:
    """The default tracer: hops go nowhere."""


@dataclass
class TraceLog:
    """A tracer that keeps every hop (and optionally echoes it), for the demo and tests."""

    echo: Callable[[Hop], None] | None = None
    hops: list[Hop] = field(default_factory=list)

    def __call__(self, hop: Hop) -> None:
        self.hops.append(hop)
        if self.echo is not None:
            self.echo(hop)

    def mark(self) -> int:
        """Where the log is now; :meth:`since` returns the hops after a mark."""
        return len(self.hops)

    def since(self, mark: int) -> list[Hop]:
        return self.hops[mark:]


def mermaid(hops: list[Hop], *, title: str = "", participants: list[str] | None = None) -> str:
    """A Mermaid ``sequenceDiagram`` of the hops, in order; notes become ``Note over``."""
    order = list(participants or [])
    for hop in hops:
        for name in (hop.source, hop.target):
            if name not in order:
                order.append(name)
    lines = ["sequenceDiagram"]
    if title:
        lines.append(f"    title {title}")
    for name in order:
        lines.append(f"    participant {_node(name)} as {name}")
    for hop in hops:
        text = hop.action + (f" → {hop.status}" if hop.status else "")
        arrow = "-x" if hop.status[:1] in ("4", "5") or hop.status.startswith("refused") else "->>"
        if hop.source == hop.target:
            lines.append(f"    Note over {_node(hop.source)}: {_text(text)}")
        else:
            lines.append(f"    {_node(hop.source)}{arrow}{_node(hop.target)}: {_text(text)}")
        if hop.note:
            lines.append(f"    Note right of {_node(hop.target)}: {_text(hop.note)}")
    return "\n".join(lines) + "\n"


def _node(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name)


def _text(text: str) -> str:
    return text.replace(";", ",").replace("#", "").replace("\n", " ")
