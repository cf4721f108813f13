# ruff: noqa: S105 - test credentials
from __future__ import annotations

import logging
import sqlite3

import pytest
from config_api_testkit import (
    NUMBER,
    PLAIN,
    line_body,
    make_settings,
    new_key,
    tenant_body,
)
from pydantic import SecretStr

from voiceticket_config_api import create_app
from voiceticket_config_api.crypto import KeyRing, SecretDecryptError, keyring_from_settings
from voiceticket_config_api.settings import parse_service_tokens


def test_keyring_roundtrip_and_kids():
    k1, k2 = new_key(), new_key()
    old = KeyRing.parse(f"k1:{k1}")
    new = KeyRing.parse(f" k2:{k2} , k1:{k1} ")
    stored = old.encrypt("s3cret")
    assert stored.startswith("k1:") and "s3cret" not in stored
    assert old.encrypt("s3cret") != stored  # randomised
    assert new.primary_kid == "k2" and new.kids == ("k2", "k1")
    assert new.decrypt(stored) == "s3cret"
    assert new.encrypt("x").startswith("k2:")
    with pytest.raises(SecretDecryptError):
        old.decrypt(new.encrypt("x"))  # unknown kid
    with pytest.raises(SecretDecryptError):
        KeyRing.parse(f"k1:{new_key()}").decrypt(stored)  # same kid, wrong key


@pytest.mark.parametrize("spec", ["nokid", "k1:not-a-key", "bad kid:" + "A" * 44, "k1:{k},k1:{k}", ""])
def test_keyring_rejects_bad_specs(spec):
    spec = spec.format(k=new_key())
    with pytest.raises(ValueError) as exc:
        KeyRing.parse(spec)
    assert "not-a-key" not in str(exc.value)


def test_refuses_to_start_without_master_keys(tmp_path):
    with pytest.raises(RuntimeError, match="CONFIG_API_MASTER_KEYS is required"):
        create_app(make_settings(tmp_path, env="production", master_keys=None))
    with pytest.raises(RuntimeError):
        create_app(make_settings(tmp_path, env="test", master_keys=None))


def test_development_uses_fixed_key_loudly(caplog):
    ring = keyring_from_settings(None, "development")
    assert ring.primary_kid == "dev"
    assert any(r.levelno == logging.WARNING and "PUBLIC" in r.message for r in caplog.records)


def test_service_token_parsing():
    assert parse_service_tokens(SecretStr("ingress:a,notifier:b, ingress:c")) == [
        ("ingress", b"a"),
        ("notifier", b"b"),
        ("ingress", b"c"),
    ]
    for bad in ("ingress", "admin:tok-123", "ingress:", "ingress:x,notifier:x"):
        with pytest.raises(ValueError) as exc:
            parse_service_tokens(SecretStr(bad))
        assert "tok-123" not in str(exc.value)


def kids_in_db(db_file: str) -> list[str]:
    with sqlite3.connect(db_file) as conn:
        rows = conn.execute(
            "SELECT jira_api_token_enc, twilio_auth_token_enc, openai_api_key_enc FROM tenants"
        ).fetchall()
    return sorted(v.split(":", 1)[0] for row in rows for v in row if v is not None)


async def test_master_key_rotation(tmp_path, admin, service_headers, start):
    k1, k2 = f"k1:{new_key()}", f"k2:{new_key()}"
    db_file = str(tmp_path / "config.db")
    async with start(master_keys=k1) as c:
        await c.post("/v1/tenants", json=tenant_body(), headers=admin)
        await c.put(f"/v1/lines/{NUMBER}", json=line_body(), headers=admin)
    assert kids_in_db(db_file) == ["k1"] * 3

    # new primary k2; rows written under k1 still decrypt
    async with start(master_keys=f"{k2},{k1}") as c:
        r = await c.get(f"/v1/runtime/lines/{NUMBER}", headers=service_headers("transcriber"))
        assert r.json()["tenant"]["speech_to_text_api_key"] == PLAIN["openai_api_key"]
        assert (
            (await c.get("/v1/tenants/acme", headers=admin))
            .json()["jira_api_token"]
            .endswith(PLAIN["jira_api_token"][-4:])
        )
        await c.put(
            "/v1/tenants/acme/credentials/jira_api_token",
            json={"value": "new-jira-token-xyz"},
            headers=admin,
        )
        assert kids_in_db(db_file) == ["k1", "k1", "k2"]
        r = await c.post("/v1/admin/rotate-master-key", headers=admin)
        assert r.status_code == 200 and r.json() == {"primary_kid": "k2", "reencrypted": 2}
        assert kids_in_db(db_file) == ["k2"] * 3
        r = await c.post("/v1/admin/rotate-master-key", headers=admin)
        assert r.json()["reencrypted"] == 0

    # the old key can now be dropped
    async with start(master_keys=k2) as c:
        r = await c.get(f"/v1/runtime/lines/{NUMBER}", headers=service_headers("jira-writer"))
        assert r.json()["tenant"]["jira_api_token"] == "new-jira-token-xyz"

    # a key ring that cannot decrypt fails loudly on runtime reads, without leaking anything
    async with start(master_keys=f"k3:{new_key()}") as c:
        r = await c.get(f"/v1/runtime/lines/{NUMBER}", headers=service_headers("notifier"))
        assert r.status_code == 500 and "cannot be decrypted" in r.text
        r = await c.get("/v1/tenants/acme", headers=admin)
        assert r.status_code == 200 and r.json()["twilio_auth_token"] == "•••• (cannot decrypt)"
