"""What one subscriber's handset shows, in one shape for the page and its JSON twin.

The prompts come from the identity server's pending CIBA requests on an interactive handset
(:meth:`~operators.identity.ciba.CibaService.prompts`), the one-time codes and consent notices
from the :class:`~operators.handset_app.inbox.HandsetInbox`; a ``version`` digest of both lets
the page's script reload only when something changed.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from ..identity import PURPOSE_PREFIX, Prompt, describe_purpose
from .inbox import Message

if TYPE_CHECKING:
    from operators.operator import Operator



@dataclass(frozen=True)
class PromptView:
    auth_req_id: str
    application: str
    """The requesting application's display name (and the aggregator it came through)."""
    purpose: str
    purpose_words: str
    scopes: tuple[str, ...]
    binding_message: str | None
    expires_in: int
    pressed: str | None
    """``approved`` or ``denied`` once a button was pressed, until the application collects."""


@dataclass(frozen=True)
class HandsetView:
    msisdn: str
    operator_name: str
    prompts: tuple[PromptView, ...]
    messages: tuple[Message, ...]

    @property
    def version(self) -> str:
        """Changes whenever a prompt arrives, is answered or goes, or a message arrives."""
        seen = [(p.auth_req_id, p.pressed) for p in self.prompts]
        latest = self.messages[0].id if self.messages else 0
        return hashlib.sha256(repr((seen, latest)).encode()).hexdigest()[:16]

    def json(self) -> dict[str, Any]:
        return {
            "phoneNumber": self.msisdn,
            "version": self.version,
            "prompts": [asdict(p) for p in self.prompts],
            "messages": [
                {"id": m.id, "kind": m.kind, "text": m.text, "data": m.data, "sentAt": m.sent_at}
                for m in self.messages
            ],
        }


def handset_view(operator: Operator, msisdn: str) -> HandsetView:
    """The phone of ``msisdn`` now (the caller checked that this operator serves it)."""
    now = operator.clock()
    prompts = tuple(
        _prompt(operator, p, now) for p in operator.identity.ciba.prompts(msisdn)
    )
    return HandsetView(msisdn, operator.config.display_name, prompts,
                       tuple(operator.handsets.messages(msisdn)))


def _prompt(operator: Operator, prompt: Prompt, now: float) -> PromptView:
    purpose = next((s for s in prompt.scope if s.startswith(PURPOSE_PREFIX)), "")
    return PromptView(
        auth_req_id=prompt.auth_req_id,
        application=_application(operator, prompt.consent_party),
        purpose=purpose,
        purpose_words=describe_purpose(purpose) if purpose else "(none)",
        scopes=tuple(s for s in prompt.scope  # the APIs asked for; "openid" means nothing here
                     if not s.startswith(PURPOSE_PREFIX) and s != "openid"),
        binding_message=prompt.binding_message,
        expires_in=max(0, int(prompt.expires_at - now)),
        pressed=prompt.pressed.value if prompt.pressed is not None else None,
    )


def _application(operator: Operator, party: str) -> str:
    """A client's registered name; an application behind an aggregator by its identifier,
    with the aggregator's name (the operator knows no more of it)."""
    client_id, _, beneficiary = party.partition("/")
    client = operator.identity.clients.get(client_id)
    name = client.name if client is not None else client_id
    return f"{beneficiary}, through {name}" if beneficiary else name
