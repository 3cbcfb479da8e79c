"""The catalogue: the operation table and CAMARA's own YAML, plans and prices, public pages.

The pages are read with a small definitions folder written by each test (so a test shows what
the YAML says reaching the page), and once with CAMARA's real folder when it is there.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from fastapi import FastAPI

from operators.camara import OPERATIONS
from operators.config import Plan, PriceTier, Quota, TierMode
from operators.portal.catalogue import (
    CAMARA_DIR_VARIABLE,
    ApiDescriptions,
    build_catalogue_pages,
    camara_dir,
    plan_prices,
    read_catalogue,
)
from tests.operators.portal.conftest import Browser, Portal

SIM_SWAP_YAML = """\
openapi: 3.0.3
info:
  title: SIM Swap
  description: |
    The SIM swap API tells *when* a SIM was last swapped.

    # Introduction

    Hostile <script>alert(1)</script> text stays text.
  version: 2.1.0
servers:
  - url: "{apiRoot}/sim-swap/v2"
paths: {}
"""


def _definitions(folder: Path) -> ApiDescriptions:
    (folder / "sim-swap").mkdir(parents=True)
    (folder / "sim-swap" / "sim-swap.yaml").write_text(SIM_SWAP_YAML)
    (folder / "broken.yaml").write_text("info: [unclosed\n")
    (folder / "commonalities.yaml").write_text("info:\n  title: common types\n")
    return ApiDescriptions(folder)


def _serve(portal: Portal, descriptions: ApiDescriptions) -> FastAPI:
    """The catalogue's router on the portal's app (before any copy the app may already have)."""
    parts = portal.parts
    router = build_catalogue_pages(parts.host, parts.accounts, parts.guard,
                                   descriptions=descriptions)
    portal.app.router.routes[:0] = router.routes
    return portal.app


async def test_public_catalogue_lists_every_api_with_the_yaml_words(
    portal: Portal, tmp_path: Path
) -> None:
    _serve(portal, _definitions(tmp_path / "camara"))
    page = await portal.browser().get("/portal/catalogue")
    assert page.status_code == 200, page.text
    for api in portal.parts.host.apis:
        assert f'id="api-{api}"' in page.text
    for operation in OPERATIONS:
        if operation.api in portal.parts.host.apis:
            assert f"{operation.method} {operation.template}" in page.text
    assert "SIM Swap" in page.text and "2.1.0" in page.text
    assert "The SIM swap API tells <em>when</em> a SIM was last swapped." in page.text
    assert 'id="definitions-missing"' not in page.text
    assert 'href="/portal/sign-up"' in page.text, "a visitor is invited to sign up"


async def test_plans_and_prices_are_listed(portal: Portal, tmp_path: Path) -> None:
    _serve(portal, _definitions(tmp_path / "camara"))
    page = (await portal.browser().get("/portal/catalogue")).text
    for plan in portal.operator.config.plans:
        assert f'id="plan-{plan.name}"' in page
    assert "0.01 EUR per call" in page
    assert "2000.00 EUR" in page
    assert "1,000 calls per day" in page


async def test_detail_page_renders_the_description_without_its_markup(
    portal: Portal, tmp_path: Path
) -> None:
    _serve(portal, _definitions(tmp_path / "camara"))
    page = await portal.browser().get("/portal/catalogue/sim-swap")
    assert page.status_code == 200, page.text
    assert "<h1>Introduction</h1>" in page.text, "Markdown is rendered"
    assert "<script>alert(1)</script>" not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    assert 'id="op-checkSimSwap"' in page.text and 'id="op-retrieveSimSwapDate"' in page.text
    assert "sim-swap:check" in page.text and "sim-swap/sim-swap.yaml" in page.text
    assert f"{portal.operator.api_root}/sim-swap/v2" in page.text


async def test_an_api_without_a_definition_shows_the_table(
    portal: Portal, tmp_path: Path
) -> None:
    _serve(portal, _definitions(tmp_path / "camara"))
    page = await portal.browser().get("/portal/catalogue/kyc-match")
    assert page.status_code == 200
    assert 'id="op-KYC_Match"' in page.text
    assert "definition of this API was not" in page.text


async def test_without_the_definitions_folder_the_table_alone_and_a_note(
    portal: Portal, tmp_path: Path
) -> None:
    _serve(portal, ApiDescriptions(tmp_path / "nowhere"))
    browser = portal.browser()
    page = await browser.get("/portal/catalogue")
    assert page.status_code == 200
    assert 'id="definitions-missing"' in page.text and "OGSIM_CAMARA_DIR" in page.text
    assert str(tmp_path / "nowhere") in page.text
    assert "POST /sim-swap/v2/check" in page.text
    detail = await browser.get("/portal/catalogue/sim-swap")
    assert detail.status_code == 200 and 'id="op-checkSimSwap"' in detail.text


async def test_an_unknown_api_is_a_404_page(portal: Portal, tmp_path: Path) -> None:
    _serve(portal, _definitions(tmp_path / "camara"))
    for name in ("no-such-api", "%3Cscript%3Ealert(1)", "sim-swap%00"):
        page = await portal.browser().get(f"/portal/catalogue/{name}")
        assert page.status_code == 404, name
        assert page.headers["content-type"].startswith("text/html")
        assert "<script>" not in page.text.split("<main>")[1]


async def test_signed_in_the_catalogue_offers_the_console(
    portal: Portal, developer: Browser, tmp_path: Path
) -> None:
    _serve(portal, _definitions(tmp_path / "camara"))
    page = await developer.get("/portal/catalogue/sim-swap")
    assert 'id="try-in-console"' in page.text
    assert 'id="signed-in-as"' in page.text


def test_the_real_camara_folder_describes_every_api_the_operator_serves() -> None:
    descriptions = ApiDescriptions()
    if not descriptions.found:
        pytest.skip(f"CAMARA's definitions are not at {descriptions.folder}")
    apis = tuple(dict.fromkeys(o.api for o in OPERATIONS))
    catalogue = read_catalogue(apis, (), "free", descriptions)
    assert catalogue.missing == ()
    titles = {e.api: e.title for e in catalogue.entries}
    assert titles["sim-swap"] == "SIM Swap"
    assert all(e.version[0].isdigit() for e in catalogue.entries)


def test_the_folder_comes_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(CAMARA_DIR_VARIABLE, str(tmp_path))
    assert camara_dir() == tmp_path
    monkeypatch.delenv(CAMARA_DIR_VARIABLE)
    assert camara_dir().parts[-2:] == ("shared", "camara")


def test_tiered_and_flat_prices_in_words() -> None:
    plans = (
        Plan(name="tiered", rate_per_second=5, burst=10, currency="EUR",
             quota=Quota(limit=5000), tier_mode=TierMode.VOLUME,
             tiers=(PriceTier(up_to=1000, unit_price=Decimal("0.002")),
                    PriceTier(unit_price=Decimal("0.001"), flat_fee=Decimal(5)))),
        Plan(name="flat", rate_per_second=1, burst=1, price_per_call=0.5, monthly_fee=10),
    )
    tiered, flat = plan_prices(plans, "flat")
    assert not tiered.default and flat.default
    assert tiered.calls == ("volume tiers", "calls 1 to 1,000: 0.002 EUR each",
                            "calls from 1,001: 0.001 EUR each + 5.00 EUR for the band")
    assert tiered.quota == "5,000 calls per day"
    assert flat.calls == ("0.50 EUR per call",)
    assert flat.monthly_fee == "10.00 EUR"
