from __future__ import annotations

import sqlite3

import pytest
from config_api_testkit import (
    ADMIN_TOKEN,
    NUMBER,
    PLAIN,
    SERVICE_TOKENS,
    auth,
    line_body,
    make_settings,
    new_key,
    running,
    tenant_body,
    write_seed,
)

from voiceticket_config_api import create_app


def snapshot(db_file: str) -> dict[str, list[tuple]]:
    with sqlite3.connect(db_file) as conn:
        return {
            t: conn.execute(f"SELECT * FROM {t} ORDER BY 1").fetchall()  # noqa: S608
            for t in ("tenants", "lines")
        }


async def test_seed_is_idempotent(tmp_path):
    seed = write_seed(
        tmp_path / "seed.json",
        [tenant_body(), tenant_body("globex", name="Globex")],
        [
            {"number": NUMBER, **line_body()},
            {"number": "+442071838750", **line_body("globex", language="en")},
        ],
    )
    settings = make_settings(tmp_path, seed_file=seed, master_keys=f"k1:{new_key()}")
    async with running(settings) as c:
        r = await c.get(f"/v1/runtime/lines/{NUMBER}", headers=auth(SERVICE_TOKENS["analyzer"]))
        assert r.json()["tenant"]["openai_api_key"] == PLAIN["openai_api_key"]
        assert r.json()["line"]["request_types"] == {"incident": "11", "service_request": "12"}
    first = snapshot(str(tmp_path / "config.db"))
    assert len(first["tenants"]) == 2 and len(first["lines"]) == 2
    async with running(settings):
        pass
    assert snapshot(str(tmp_path / "config.db")) == first  # byte-identical, timestamps included

    # an edited seed updates in place and adds nothing
    write_seed(seed, [tenant_body(name="Acme Renamed")], [])
    async with running(settings) as c:
        tenants = (await c.get("/v1/tenants", headers=auth(ADMIN_TOKEN))).json()
        assert [(t["id"], t["name"]) for t in tenants] == [
            ("acme", "Acme Renamed"),
            ("globex", "Globex"),
        ]
        assert len((await c.get("/v1/lines", headers=auth(ADMIN_TOKEN))).json()) == 2


@pytest.mark.parametrize(
    ("tenants", "lines", "needle"),
    [
        ([tenant_body(jira_base_url="nope")], [], "tenants.0.jira_base_url"),
        ([], [{"number": NUMBER, **line_body("ghost")}], "unknown tenant"),
    ],
)
async def test_bad_seed_refuses_to_start(tmp_path, tenants, lines, needle):
    seed = write_seed(tmp_path / "seed.json", tenants, lines)
    app = create_app(make_settings(tmp_path, seed_file=seed))
    with pytest.raises(RuntimeError) as exc:
        async with app.router.lifespan_context(app):
            pass
    assert needle in str(exc.value)
    for value in PLAIN.values():
        assert value not in str(exc.value)
