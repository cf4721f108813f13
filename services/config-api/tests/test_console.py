"""The admin console at /admin: served with a strict CSP, nothing from elsewhere, every API call
it makes needs a token, and its field help covers every line setting with the API's defaults."""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
from config_api_testkit import auth
from pydantic_core import PydanticUndefined

from voiceticket_config_api.routes_console import CSP, console_assets
from voiceticket_config_api.schemas import CredentialName, LineIn, TenantCreate

ASSETS = console_assets()
API_CALL = re.compile(r"""api\("(GET|POST|PUT|PATCH|DELETE)",\s*(?:path\()?["`](/v1/[^"`?$]*)""")


def csp_directives(header: str) -> dict[str, str]:
    return {d.split()[0]: d.split(" ", 1)[1] for d in (p.strip() for p in header.split(";")) if d}


async def test_the_page_loads_without_a_token_under_a_strict_csp(client: httpx.AsyncClient) -> None:
    r = await client.get("/admin")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    directives = csp_directives(r.headers["content-security-policy"])
    assert directives["script-src"] == "'self'" and directives["default-src"] == "'none'"
    assert directives["connect-src"] == "'self'" and directives["frame-ancestors"] == "'none'"
    assert "unsafe" not in r.headers["content-security-policy"]
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["cache-control"] == "no-store"
    assert "<h1" in r.text and 'type="module"' in r.text


async def test_every_asset_is_served_with_the_csp_and_its_type(client: httpx.AsyncClient) -> None:
    page = (await client.get("/admin")).text
    linked = set(re.findall(r'(?:src|href)="/admin/assets/([^"]+)"', page))
    imported = {m for body in ASSETS.values() for m in re.findall(rb'from "\./([^"]+)"', body)}
    assert {"console.js", "console.css"} <= linked
    assert {b"api.js", b"ui.js"} <= imported
    types = {"js": "text/javascript", "css": "text/css", "json": "application/json", "html": "text/html"}
    for name in ASSETS:
        if name == "index.html":
            continue
        r = await client.get(f"/admin/assets/{name}")
        assert r.status_code == 200, name
        assert r.headers["content-type"].startswith(types[name.rsplit(".", 1)[1]]), name
        assert r.headers["content-security-policy"] == CSP, name
        assert r.content == ASSETS[name]
    for bad in ("nope.js", "index.html", "..%2Fapp.py", "console.js.map"):
        assert (await client.get(f"/admin/assets/{bad}")).status_code in (404, 422), bad


def test_no_asset_loads_anything_from_elsewhere_or_inline() -> None:
    assert {"index.html", "console.js", "console.css", "fields.json"} <= set(ASSETS)
    for name, body in ASSETS.items():
        text = body.decode()
        assert not re.search(r"(?i)\b(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}", text), (
            f"an external URL in {name}"
        )
        assert "@import" not in text and "url(" not in text, name
        assert "innerHTML" not in text and "eval(" not in text and "new Function" not in text, name
        for module in re.findall(r'from "([^"]+)"', text):
            assert module.startswith("./"), f"{name} imports {module}"
    page = ASSETS["index.html"].decode()
    assert re.findall(r"<script\b[^>]*>(.*?)</script>", page, re.S) == [""], (
        "one script, by src, no inline code"
    )
    assert not re.search(r"\son[a-z]+=", page) and " style=" not in page and "<style" not in page


async def test_every_api_call_of_the_page_needs_a_token(client: httpx.AsyncClient) -> None:
    calls = {(method, url) for body in ASSETS.values() for method, url in API_CALL.findall(body.decode())}
    paths = {url for _, url in calls}
    assert {"/v1/tenants", "/v1/lines/{}", "/v1/admin/tokens", "/v1/audit", "/v1/calls"} <= paths
    assert len(calls) >= 15
    routes = {getattr(r, "path", "") for r in client.app.routes}  # type: ignore[attr-defined]
    checked = 0
    for method, template in sorted(calls):
        url = template.replace("/lines/{}", "/lines/%2B14155550100").replace("{}", "acme")
        r = await client.request(method, url, json={} if method in ("POST", "PUT", "PATCH") else None)
        if r.status_code == 404 and r.json() == {"detail": "Not Found"}:
            # an API another part of config-api adds (calls, connection test): not there yet
            assert not any(_matches(route, url) for route in routes), url
            continue
        assert r.status_code == 401, (method, url, r.status_code)
        assert r.headers["www-authenticate"] == "Bearer"
        checked += 1
    assert checked >= 12


def _matches(route: str, url: str) -> bool:
    pattern = "^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(route)) + "$"
    return re.match(pattern, url) is not None


async def test_whoami_names_the_token_and_its_scope(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    assert (await client.get("/v1/admin/whoami")).status_code == 401
    assert (await client.get("/v1/admin/whoami", headers=auth("wrong-token"))).status_code == 401
    assert (await client.get("/v1/admin/whoami", headers=admin)).json() == {"actor": "admin", "role": "admin"}
    r = await client.post("/v1/admin/tokens", json={"name": "viewer", "scope": "read-only"}, headers=admin)
    viewer = auth(r.json()["token"])
    assert (await client.get("/v1/admin/whoami", headers=viewer)).json() == {
        "actor": "viewer",
        "role": "read-only",
    }


def _fields() -> dict[str, list[dict[str, Any]]]:
    fields: dict[str, list[dict[str, Any]]] = json.loads(ASSETS["fields.json"])
    return fields


def test_every_line_setting_has_help_and_the_apis_default() -> None:
    defs = {d["name"]: d for d in _fields()["line"]}
    assert list(defs) == list(LineIn.model_fields), "every line field, in the API's order"
    for name, info in LineIn.model_fields.items():
        d = defs[name]
        assert d["label"] and len(d["help"]) > 20, name
        if info.is_required() or name == "number":
            assert d.get("required") is True, name
        elif info.default_factory is not None:
            assert d["default"] == info.default_factory(), name  # type: ignore[call-arg]
        else:
            assert info.default is not PydanticUndefined
            assert d["default"] == info.default, name
        if d["type"] == "select":
            assert set(d["options"]) == set(re.findall(r"'([a-z_]+)'", str(info.annotation))), name


def test_every_tenant_setting_and_credential_has_help() -> None:
    tenant = {d["name"] for d in _fields()["tenant"]}
    credentials = [d["name"] for d in _fields()["credentials"]]
    assert tenant == set(TenantCreate.model_fields) - set(CredentialName)
    assert sorted(credentials) == sorted(CredentialName)
    assert all(len(d["help"]) > 20 for group in _fields().values() for d in group)
