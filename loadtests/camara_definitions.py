"""Where CAMARA's own definitions (API YAML, ``.feature`` files, commonalities) are read from.

ogsim never copies them: conformance, the load test's answer checks and the tests all read
the folder this module names, so that one environment variable points every one of them at
another release of the definitions.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["CAMARA_DIR_VARIABLE", "camara_dir"]

CAMARA_DIR_VARIABLE = "OGSIM_CAMARA_DIR"


def camara_dir() -> Path:
    """``$OGSIM_CAMARA_DIR``, else ``../shared/camara`` beside the checkout ogsim runs from.

    The default is found from this file, not from the current directory, so it holds
    wherever a command is started; it may not exist (callers say so, or skip).
    """
    configured = os.environ.get(CAMARA_DIR_VARIABLE)
    if configured:
        return Path(configured)
    checkout = Path(__file__).resolve().parent.parent
    return checkout.parent / "shared" / "camara"
