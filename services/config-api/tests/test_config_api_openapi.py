"""The OpenAPI document is the truth: schemathesis against config-api on a real uvicorn server.

The app runs on 127.0.0.1 (an ephemeral port) with a throwaway SQLite database, seeded with one
tenant and one line so the path-parameter examples reach real rows. Every operation gets a bounded,
deterministic set of generated requests (valid and invalid) with the admin token; each response
must be documented: no 5xx, a documented status code and content type, a body matching the
documented schema.
"""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import schemathesis
import uvicorn
from config_api_testkit import (
    ADMIN_TOKEN,
    NUMBER,
    auth,
    line_body,
    make_settings,
    seeded_settings,
    tenant_body,
)
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from voiceticket_config_api import create_app

MAX_EXAMPLES = 40
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """config-api served by uvicorn on loopback, for this module only; stopped at the end."""
    tmp: Path = tmp_path_factory.mktemp("openapi")
    app = create_app(seeded_settings(tmp, [tenant_body()], [{"number": NUMBER, **line_body()}]))
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False, lifespan="on")
    )
    thread = threading.Thread(target=server.run, name="config-api-uvicorn", daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=20)


# The document under test comes from the app factory (no server needed to collect the tests); the
# requests go to the real server, which must serve the same document.
DOCUMENT = create_app(make_settings(Path("unused"))).openapi()
schema = schemathesis.openapi.from_dict(
    DOCUMENT,
    config=schemathesis.Config.from_dict(
        {
            "seed": 1,
            "request-timeout": 10,
            "generation": {"max-examples": MAX_EXAMPLES, "deterministic": True, "database": "none"},
        }
    ),
)


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_every_response_is_documented(case: schemathesis.Case, base_url: str) -> None:
    case.call_and_validate(base_url=base_url, headers=auth(ADMIN_TOKEN), checks=CHECKS)


def test_the_server_serves_the_tested_document(base_url: str) -> None:
    assert httpx.get(f"{base_url}/openapi.json", headers=auth(ADMIN_TOKEN)).json() == DOCUMENT


def test_served_on_loopback_only(base_url: str) -> None:
    assert base_url.startswith("http://127.0.0.1:")
    assert httpx.get(f"{base_url}/readyz").status_code == 200


# -- /docs and /redoc work air-gapped: every asset comes from config-api itself ------------------

URL_IN_PAGE = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']|url:\s*["']([^"']+)["']""")


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
async def test_doc_pages_load_only_same_origin_assets(start, page):
    async with start(docs=True) as client:
        r = await client.get(page)
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
        assert "://" not in r.text and "cdn" not in r.text.lower()  # no absolute URL, no CDN
        urls = {a or b for a, b in URL_IN_PAGE.findall(r.text)}
        assert any(u.endswith(".js") for u in urls), urls
        for url in urls:
            assert url.startswith("/") and not url.startswith("//"), url  # same origin
            asset = await client.get(url, headers=auth(ADMIN_TOKEN))
            assert asset.status_code == 200, url
            assert asset.content, url
        if page == "/docs":
            assert {u for u in urls if u.endswith((".js", ".css"))} == {
                "/static-offline-docs/swagger-ui-bundle.js",
                "/static-offline-docs/swagger-ui.css",
            }
