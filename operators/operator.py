"""One operator, assembled from its config: database, subscribers, identity server, and its app."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

from fastapi import FastAPI
from fastapi.responses import JSONResponse

from .config import OperatorConfig
from .gateway.errors import install_camara_error_handlers
from .identity import IdentityServer, build_identity_router, install_oauth_error_handlers
from .storage import Database
from .subscriber_admin import build_subscriber_admin_router
from .subscriber_base import SubscriberBase
from .types import Clock


@dataclass
class Operator:
    """Everything one operator owns; nothing here is shared with any other operator."""

    config: OperatorConfig
    db: Database
    subscribers: SubscriberBase
    identity: IdentityServer
    clock: Clock

    @classmethod
    def from_config(
        cls,
        config: OperatorConfig,
        *,
        clock: Clock = time.time,
        reference_time: datetime | None = None,
    ) -> Operator:
        db = Database(config.storage)
        subscribers = SubscriberBase(config, db, clock=clock, reference_time=reference_time)
        identity = IdentityServer(config, db, subscribers, clock)
        return cls(config, db, subscribers, identity, clock)

    @property
    def issuer(self) -> str:
        return self.identity.issuer

    @property
    def api_root(self) -> str:
        """Where the CAMARA APIs live: the issuer's origin (also the tokens' audience)."""
        parts = urlsplit(self.identity.issuer)
        return f"{parts.scheme}://{parts.netloc}"

    def close(self) -> None:
        self.db.close()


def create_operator_app(operator: Operator) -> FastAPI:
    """The operator's public face: identity server under the issuer path, admin API, health."""
    config = operator.config
    app = FastAPI(
        title=f"{config.display_name} ({config.id})",
        description="An ogsim operator: identity server, admin API and (later) CAMARA gateway.",
    )
    install_camara_error_handlers(app)

    identity_app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    install_oauth_error_handlers(identity_app)
    identity_app.include_router(build_identity_router(operator.identity))
    app.mount(urlsplit(operator.issuer).path.rstrip("/") or "/oauth", identity_app)

    app.include_router(build_subscriber_admin_router(operator.subscribers, config.admin_secret))

    @app.get("/health", tags=["ops"])
    def health() -> JSONResponse:
        return JSONResponse({"status": "UP", "operator": config.id})

    return app
