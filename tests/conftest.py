"""What every test shares: a key-encryption key for operators served on a database file.

``ogsim serve --storage FILE`` (and each party process) refuses to start without
``OGSIM_KEY_ENCRYPTION_KEY``, since the file keeps the operator's signing keys sealed at rest;
the suite sets one random key for the whole session, children included. A test that checks
the refusal removes it with ``monkeypatch.delenv``.
"""

from __future__ import annotations

import os

from operators.identity import KeySealing

os.environ.setdefault(KeySealing.ENV, KeySealing.generate())
