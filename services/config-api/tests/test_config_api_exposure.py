"""What config-api serves without a token, and which public secrets it refuses.

Decision (docs/deployment.md, "What is public"): the admin API needs the admin token; the API
description (``/openapi.json``) needs it too, except on a developer's loopback instance; the
interactive pages (``/docs``, ``/redoc``) exist only there; ``/metrics``, ``/healthz`` and ``/readyz``
are tokenless for Prometheus and the probes and must stay internal. Public development secrets
(the built-in master key, the ``dev-only-*`` tokens docker-compose.yml used to ship) are refused in
production and whenever config-api listens beyond loopback, whatever ``CONFIG_API_ENV`` says.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from config_api_testkit import ADMIN_TOKEN, SERVICE_TOKENS, auth, make_settings, running
from pydantic import ValidationError

from voiceticket_config_api.crypto import DEV_KEY
from voiceticket_config_api.settings import PUBLIC_MASTER_KEYS


@pytest.fixture(autouse=True)
def _no_config_api_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("ENV", "HOST", "DOCS", "MASTER_KEYS", "ADMIN_TOKEN", "SERVICE_TOKENS"):
        monkeypatch.delenv(f"CONFIG_API_{name}", raising=False)


@pytest.mark.parametrize(
    "overrides",
    [
        {"env": "production"},
        {"env": "test"},
        {"env": "development", "host": "0.0.0.0"},  # development, but reachable: closed
    ],
)
async def test_the_api_description_needs_the_admin_token(tmp_path: Path, overrides: dict) -> None:
    async with running(make_settings(tmp_path, **overrides)) as client:
        r = await client.get("/openapi.json")
        assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
        assert (await client.get("/openapi.json", headers=auth("not-a-token"))).status_code == 401
        r = await client.get("/openapi.json", headers=auth(SERVICE_TOKENS["ingress"]))
        assert r.status_code == 403
        r = await client.get("/openapi.json", headers=auth(ADMIN_TOKEN))
        assert r.status_code == 200 and "/v1/tenants" in r.json()["paths"]
        for page in ("/docs", "/redoc", "/docs/oauth2-redirect"):
            assert (await client.get(page, headers=auth(ADMIN_TOKEN))).status_code == 404, page


async def test_a_developers_loopback_instance_serves_its_docs_openly(tmp_path: Path) -> None:
    async with running(make_settings(tmp_path, env="development", host="127.0.0.1")) as client:
        assert (await client.get("/openapi.json")).status_code == 200
        assert (await client.get("/docs")).status_code == 200


async def test_docs_can_be_opened_explicitly_outside_production(tmp_path: Path) -> None:
    async with running(make_settings(tmp_path, env="development", host="0.0.0.0", docs=True)) as client:
        assert (await client.get("/openapi.json")).status_code == 200
    with pytest.raises(ValidationError, match="CONFIG_API_DOCS=true is refused in production"):
        make_settings(tmp_path, env="production", docs=True)


async def test_metrics_and_probes_need_no_token(tmp_path: Path) -> None:
    async with running(make_settings(tmp_path, env="production")) as client:
        for path in ("/metrics", "/healthz", "/readyz"):
            assert (await client.get(path)).status_code == 200, path
        assert (await client.get("/v1/tenants")).status_code == 401


@pytest.mark.parametrize("env", ["development", "test"])
def test_the_development_master_key_is_refused_beyond_loopback(tmp_path: Path, env: str) -> None:
    with pytest.raises(
        ValidationError, match=r"CONFIG_API_MASTER_KEYS must be set.*CONFIG_API_HOST=0\.0\.0\.0"
    ):
        make_settings(tmp_path, env="development", host="0.0.0.0", master_keys=None)
    for key in sorted(PUBLIC_MASTER_KEYS):
        with pytest.raises(ValidationError, match="public development key"):
            make_settings(tmp_path, env=env, host="0.0.0.0", master_keys=f"k1:{key}")
        with pytest.raises(ValidationError, match=r"public development key.*CONFIG_API_ENV=production"):
            make_settings(tmp_path, env="production", master_keys=f"new:{DEV_KEY.decode()},old:{key}")


@pytest.mark.parametrize(
    "overrides",
    [
        {"admin_token": "dev-only-admin-token"},
        {"service_tokens": "ingress:real-ingress-token-0123,notifier:dev-only-notifier-token"},
    ],
)
def test_the_published_dev_only_tokens_are_refused_beyond_loopback(tmp_path: Path, overrides: dict) -> None:
    with pytest.raises(ValidationError, match=r"public dev-only token.*CONFIG_API_HOST=0\.0\.0\.0"):
        make_settings(tmp_path, env="development", host="0.0.0.0", **overrides)
    with pytest.raises(ValidationError, match="CONFIG_API_ENV=production"):
        make_settings(tmp_path, env="production", **overrides)
    assert make_settings(tmp_path, env="development", host="127.0.0.1", **overrides)


def test_development_on_loopback_may_use_the_public_master_key(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, env="development", master_keys=None)
    assert settings.docs_open and not settings.exposed
