"""The catalogue: every CAMARA API a party serves, with its official description and its plans.

What an API *is* here comes from two places and nowhere else: the operation table (operations,
methods, paths, scopes, purposes, whether a call is billed) and CAMARA's own YAML definitions
(title, version, description), read from the folder ``$OGSIM_CAMARA_DIR`` names, else
``../shared/camara`` beside the checkout, as the conformance runner reads it. ogsim never
copies the definitions; when the folder is missing (an installed wheel, a trimmed machine) the
catalogue still lists the operation table and says where it looked.

Pages (``build_catalogue_pages``): ``/portal/catalogue`` and ``/portal/catalogue/{api}``, public:
a developer chooses before signing up.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from fastapi import APIRouter
from markdown_it import MarkdownIt
from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import HTMLResponse

from ..camara import OPERATIONS, Operation
from ..config import Plan
from ..web.pages import add_template_dir
from .host import PortalHost

if TYPE_CHECKING:
    from .accounts import DeveloperAccounts
    from .guard import PortalGuard

__all__ = [
    "CAMARA_DIR_VARIABLE",
    "ApiDefinition",
    "ApiDescriptions",
    "Catalogue",
    "CatalogueEntry",
    "PlanPrice",
    "build_catalogue_pages",
    "camara_dir",
    "plan_prices",
    "read_catalogue",
]

add_template_dir(Path(__file__).parent / "templates")

CAMARA_DIR_VARIABLE = "OGSIM_CAMARA_DIR"


def camara_dir() -> Path:
    """``$OGSIM_CAMARA_DIR``, else ``../shared/camara`` beside the checkout ogsim runs from.

    The same rule as ``loadtests.camara_definitions`` (which ``operators`` may not import):
    found from this file, not from the current directory; the folder may not exist.
    """
    configured = os.environ.get(CAMARA_DIR_VARIABLE)
    if configured:
        return Path(configured)
    checkout = Path(__file__).resolve().parents[2]
    return checkout.parent / "shared" / "camara"


@dataclass(frozen=True)
class ApiDefinition:
    """What one official YAML says about an API: its title, version and description."""

    base_path: str
    """``/sim-swap/v2``: the server URL without ``{apiRoot}``, how the table names it too."""
    title: str
    version: str
    description: str
    source: str
    """The file, relative to the definitions folder."""


_YAML_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _definition(path: Path, folder: Path) -> ApiDefinition | None:
    """The API a YAML file describes, or None for a file that is not one (commonalities)."""
    try:
        document = yaml.load(path.read_text(encoding="utf-8"), Loader=_YAML_LOADER)
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None
    if not isinstance(document, dict):
        return None
    info, servers = document.get("info"), document.get("servers")
    if not isinstance(info, dict) or not isinstance(servers, list) or not servers:
        return None
    url = servers[0].get("url") if isinstance(servers[0], dict) else None
    if not isinstance(url, str) or not url.startswith("{apiRoot}"):
        return None
    return ApiDefinition(
        base_path=url.removeprefix("{apiRoot}").rstrip("/"),
        title=str(info.get("title") or ""),
        version=str(info.get("version") or ""),
        description=str(info.get("description") or ""),
        source=str(path.relative_to(folder)),
    )


class ApiDescriptions:
    """CAMARA's YAML definitions under one folder, by base path; read once, on first use.

    Parsing every definition takes a noticeable fraction of a second, so a party reads them
    when the first catalogue page is asked for, not when it starts.
    """

    def __init__(self, folder: Path | None = None) -> None:
        self.folder = folder if folder is not None else camara_dir()
        self._by_base_path: dict[str, ApiDefinition] | None = None

    @property
    def found(self) -> bool:
        return self.folder.is_dir()

    def by_base_path(self) -> dict[str, ApiDefinition]:
        if self._by_base_path is None:
            found: dict[str, ApiDefinition] = {}
            if self.found:
                for path in sorted(self.folder.rglob("*.yaml")):
                    definition = _definition(path, self.folder)
                    if definition is not None:
                        found.setdefault(definition.base_path, definition)
            self._by_base_path = found
        return self._by_base_path


_MARKDOWN = MarkdownIt("commonmark", {"html": False}).enable("table")
"""CommonMark with raw HTML off: a definition's text can format, never inject markup."""


@dataclass(frozen=True)
class CatalogueEntry:
    """One API as the catalogue shows it: the table's operations and the YAML's words."""

    api: str
    base_path: str
    operations: tuple[Operation, ...]
    definition: ApiDefinition | None

    @property
    def title(self) -> str:
        return self.definition.title if self.definition else self.operations[0].tag or self.api

    @property
    def version(self) -> str:
        """The YAML's full version, else the major version in the base path (``v2``)."""
        if self.definition and self.definition.version:
            return self.definition.version
        return self.base_path.rsplit("/", 1)[-1]

    @property
    def summary(self) -> str:
        """The description's first paragraph that is prose (not a heading), as plain text."""
        if self.definition is None:
            return ""
        for paragraph in self.definition.description.split("\n\n"):
            text = " ".join(paragraph.split())
            if text and not text.startswith(("#", "*", "-", "|", "!")):
                return text
        return ""

    @property
    def summary_html(self) -> Markup:
        """:attr:`summary` with its inline Markdown (emphasis, code, links) rendered."""
        return Markup(_MARKDOWN.renderInline(self.summary))  # html is off: raw HTML escaped

    @property
    def scopes(self) -> tuple[str, ...]:
        """Every scope some operation of the API accepts, in the table's order."""
        seen: dict[str, None] = {}
        for operation in self.operations:
            for alternative in operation.scopes:
                seen.update(dict.fromkeys(alternative))
        return tuple(seen)

    @property
    def billable(self) -> bool:
        return any(operation.billable for operation in self.operations)


@dataclass(frozen=True)
class PlanPrice:
    """A plan in words a developer compares: limits, fees and the price of calls."""

    name: str
    default: bool
    rate: str
    quota: str
    monthly_fee: str
    calls: tuple[str, ...]


def _money(amount: Decimal | float, currency: str) -> str:
    """Cents at least, more places where a price has them (0.004 EUR a call)."""
    value = Decimal(str(amount))
    exponent = value.normalize().as_tuple().exponent
    places = max(2, -exponent if isinstance(exponent, int) else 2)
    return f"{value:.{places}f} {currency}"


def _call_prices(plan: Plan) -> tuple[str, ...]:
    if not plan.tiers:
        return (f"{_money(plan.price_per_call, plan.currency)} per call",)
    lines = []
    start = 1
    for tier in plan.tiers:
        band = f"calls {start:,} to {tier.up_to:,}" if tier.up_to else f"calls from {start:,}"
        price = f"{_money(tier.unit_price, plan.currency)} each"
        if tier.flat_fee:
            price += f" + {_money(tier.flat_fee, plan.currency)} for the band"
        lines.append(f"{band}: {price}")
        start = (tier.up_to or 0) + 1
    mode = "graduated" if plan.tier_mode.value == "graduated" else "volume"
    return (f"{mode} tiers", *lines)


def plan_prices(plans: Iterable[Plan], default_plan: str) -> tuple[PlanPrice, ...]:
    """The plans of a party, each priced per API subscription, as the catalogue lists them."""
    return tuple(
        PlanPrice(
            name=plan.name,
            default=plan.name == default_plan,
            rate=f"{plan.rate_per_second:g} calls/s, bursts of {plan.burst}",
            quota=(f"{plan.quota.limit:,} calls per {plan.quota.period.value}"
                   if plan.quota else "no quota"),
            monthly_fee=_money(plan.monthly_fee, plan.currency),
            calls=_call_prices(plan),
        )
        for plan in plans
    )


@dataclass(frozen=True)
class Catalogue:
    entries: tuple[CatalogueEntry, ...]
    plans: tuple[PlanPrice, ...]
    definitions_folder: Path
    definitions_found: bool
    missing: tuple[str, ...] = field(default=())
    """APIs served whose YAML definition the folder does not hold."""

    def entry(self, api: str) -> CatalogueEntry | None:
        return next((e for e in self.entries if e.api == api), None)


def read_catalogue(
    apis: Iterable[str], plans: Iterable[Plan], default_plan: str,
    descriptions: ApiDescriptions,
) -> Catalogue:
    """The catalogue of ``apis`` (operation table names), in the table's order."""
    served = set(apis)
    by_api: dict[str, list[Operation]] = {}
    for operation in OPERATIONS:
        if operation.api in served:
            by_api.setdefault(operation.api, []).append(operation)
    definitions = descriptions.by_base_path()
    entries = tuple(
        CatalogueEntry(api, rows[0].base_path, tuple(rows), definitions.get(rows[0].base_path))
        for api, rows in by_api.items()
    )
    return Catalogue(
        entries=entries,
        plans=plan_prices(plans, default_plan),
        definitions_folder=descriptions.folder,
        definitions_found=descriptions.found,
        missing=tuple(e.api for e in entries if e.definition is None),
    )


def _rendered(description: str) -> Markup:
    return Markup(_MARKDOWN.render(description))  # html is off: raw HTML comes out escaped


def build_catalogue_pages(
    host: PortalHost, accounts: DeveloperAccounts, guard: PortalGuard,
    *, descriptions: ApiDescriptions | None = None,
) -> APIRouter:
    """``/portal/catalogue`` and ``/portal/catalogue/{api}``; no sign-in needed."""
    router = APIRouter(include_in_schema=False)
    source = descriptions if descriptions is not None else ApiDescriptions()

    def catalogue() -> Catalogue:
        return read_catalogue(host.apis, host.config.plans, host.config.default_plan, source)

    def common() -> dict[str, Any]:
        return {"api_root": host.api_root, "catalogue": catalogue()}

    @router.get("/portal/catalogue")
    def index(request: Request) -> HTMLResponse:
        return guard.page(request, "catalogue.html", {**common(), "heading": "API catalogue"})

    @router.get("/portal/catalogue/{api}")
    def detail(request: Request, api: str) -> HTMLResponse:
        context = common()
        entry = context["catalogue"].entry(api)
        if entry is None:
            return guard.page(request, "portal_problem.html", {
                "status": 404,
                "message": f"No API named {api!r} here: the catalogue lists what we serve.",
            }, status_code=404)
        description = _rendered(entry.definition.description) if entry.definition else None
        return guard.page(request, "catalogue_api.html", {
            **context, "entry": entry, "description": description,
            "heading": f"{entry.title} {entry.version}",
        })

    del accounts  # the catalogue shows no account's data
    return router
