"""Package faces that import a public name's module only when the name is first used.

Each package's ``__init__`` names what other packages may use (its ``__all__``) and where each
name lives; importing the face must not import every module behind it (the gateway should not
load the identity server's SQLite layer because a config was read). PEP 562's module-level
``__getattr__`` and ``__dir__`` do that; this builds the pair once for every face.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

__all__ = ["lazy_face"]


def lazy_face(
    package: str, homes: Mapping[str, str], public: Sequence[str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for ``package``, whose names live in ``homes``
    (name -> module)."""

    def __getattr__(name: str) -> Any:  # noqa: N807 - the PEP 562 hook's own name
        if name not in homes:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(homes[name]), name)

    def __dir__() -> list[str]:  # noqa: N807
        return sorted(public)

    return __getattr__, __dir__
