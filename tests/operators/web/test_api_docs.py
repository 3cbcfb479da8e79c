"""``/docs`` works with no network: the page and every asset it names come from this origin.

The operator's and the aggregator's documentation pages are fetched, every ``src`` and
``href`` they reference (and the document the starting script loads) is fetched from the same
app and must answer 200, and none of them names another origin. The pages keep the strict
Content-Security-Policy: scripts and styles from ``'self'`` only.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from federation.aggregator import Aggregator, create_aggregator_app
from federation.config import default_federation
from operators.config import example_operator
from operators.operator import Operator, create_operator_app
from operators.web.api_docs import SWAGGER_UI_PATH


class _References(HTMLParser):
    """Every URL a page makes the browser fetch (scripts, stylesheets, images) or names."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.spec_urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if value and name in ("src", "href"):
                self.urls.append(value)
            if value and name == "data-spec-url":
                self.spec_urls.append(value)


def _references(html: str) -> _References:
    parser = _References()
    parser.feed(html)
    return parser


@pytest.fixture
def operator_app(tmp_path: Path) -> Iterator[FastAPI]:
    operator = Operator.from_config(example_operator())
    yield create_operator_app(operator)
    operator.close()


@pytest.fixture
async def aggregator_app() -> AsyncIterator[FastAPI]:
    """The default federation's aggregator alone: /docs needs none of its partners."""
    federation = default_federation()
    async with httpx.AsyncClient() as http:
        aggregator = Aggregator(federation.aggregators[0], federation, http)
        yield create_aggregator_app(aggregator)
        aggregator.db.close()


def _check_offline_docs(client: TestClient) -> list[str]:
    """Fetch /docs and everything it references; return the asset paths fetched."""
    page = client.get("/docs")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    policy = page.headers["content-security-policy"]
    assert "script-src 'self';" in policy and "style-src 'self';" in policy
    assert "http" not in policy.replace("form-action 'self' http: https:", "")
    found = _references(page.text)
    assert found.spec_urls == ["/openapi.json"]
    fetched = []
    for url in [*found.urls, *found.spec_urls]:
        parts = urlsplit(url)
        assert not parts.scheme and not parts.netloc, f"{url} is off-origin"
        assert url.startswith("/"), url
        answer = client.get(url)
        assert answer.status_code == 200, url
        fetched.append(url)
    scripts = [u for u in found.urls if u.endswith(".js")]
    assert f"{SWAGGER_UI_PATH}/swagger-ui-bundle.js" in scripts
    starter = client.get("/static/api-docs.js").text
    assert "validatorUrl: null" in starter, "the validator badge would call swagger.io"
    assert "http" not in starter
    return fetched


def test_operator_docs_load_only_local_assets(operator_app: FastAPI) -> None:
    client = TestClient(operator_app)
    fetched = _check_offline_docs(client)
    assert f"{SWAGGER_UI_PATH}/swagger-ui.css" in fetched
    assert "/static/ogsim.css" in fetched
    assert client.get("/openapi.json").json()["paths"]["/sim-swap/v2/check"]


async def test_aggregator_docs_load_only_local_assets(aggregator_app: FastAPI) -> None:
    transport = httpx.ASGITransport(app=aggregator_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://hub.test") as http:
        page = await http.get("/docs")
        assert page.status_code == 200
        found = _references(page.text)
        for url in [*found.urls, *found.spec_urls]:
            assert not urlsplit(url).netloc, f"{url} is off-origin"
            assert (await http.get(url)).status_code == 200, url


def test_the_bundle_serves_only_what_the_pages_use(operator_app: FastAPI) -> None:
    """Its index.html and initializer open the public Petstore from the internet."""
    client = TestClient(operator_app)
    assert client.get(f"{SWAGGER_UI_PATH}/index.html").status_code == 404
    assert client.get(f"{SWAGGER_UI_PATH}/swagger-initializer.js").status_code == 404
    assert client.get("/redoc").status_code == 404, "ReDoc loads from a CDN"


def test_a_later_static_mount_does_not_shadow_swagger_ui(operator_app: FastAPI) -> None:
    """The operator mounts /static before the docs are installed; Swagger UI still answers."""
    client = TestClient(operator_app)
    answer = client.get(f"{SWAGGER_UI_PATH}/swagger-ui-bundle.js")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/javascript")
