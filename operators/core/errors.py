"""Errors a network function raises, each with a backend code; the integrator maps them to CAMARA.

::

    OgsimError
    └── BackendError              any failure of a network function (``code``, ``function``)
        ├── BackendBusy           servers and waiting room full: rejected at once
        ├── BackendUnavailable    the function is in outage: refused at once
        ├── BackendFailure        the call was served and failed (injected error rate)
        ├── SubscriberUnknown     no subscriber behind this number or device address
        └── SessionUnknown        no live QoS session with this id (never created, or expired)

Both realisations raise exactly these, so a caller's error handling is the same live and in
virtual time.
"""

from __future__ import annotations

from operators.errors import OgsimError

__all__ = [
    "BackendBusy",
    "BackendError",
    "BackendFailure",
    "BackendUnavailable",
    "SessionUnknown",
    "SubscriberUnknown",
]


class BackendError(OgsimError):
    """A network function did not give a record; ``code`` says why in the backend's terms."""

    code = "BACKEND_ERROR"

    def __init__(self, function: str, message: str = "") -> None:
        super().__init__(f"{function}: {self.code}" + (f": {message}" if message else ""))
        self.function = function
        self.message = message


class BackendBusy(BackendError):  # noqa: N818 - named for what happened
    """Every server busy and the waiting room full; rejecting now beats an unbounded wait."""

    code = "BUSY"


class BackendUnavailable(BackendError):  # noqa: N818 - named for what happened
    """The function is down (outage fault); nothing is queued."""

    code = "UNAVAILABLE"


class BackendFailure(BackendError):  # noqa: N818 - named for what happened
    """The function took the call, spent its service time, and then failed."""

    code = "SYSTEM_FAILURE"


class SubscriberUnknown(BackendError):  # noqa: N818 - named for what happened
    """The number or device address is not served by this operator."""

    code = "UNKNOWN_SUBSCRIBER"


class SessionUnknown(BackendError):  # noqa: N818 - named for what happened
    """The QoS session id is unknown to this policy function, or its duration has passed."""

    code = "UNKNOWN_SESSION"
