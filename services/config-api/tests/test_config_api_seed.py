from __future__ import annotations

import sqlite3

import pytest
from config_api_testkit import (
    NUMBER,
    PLAIN,
    assert_analyzer_reads_the_line,
    line_body,
    running,
    seeded_settings,
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


async def test_seed_is_idempotent(tmp_path, admin, service_headers):
    settings = seeded_settings(
        tmp_path,
        [tenant_body(), tenant_body("globex", name="Globex")],
        [
            {"number": NUMBER, **line_body()},
            {"number": "+442071838750", **line_body("globex", language="en")},
        ],
    )
    async with running(settings) as c:
        await assert_analyzer_reads_the_line(c, service_headers("analyzer"))
    first = snapshot(str(tmp_path / "config.db"))
    assert len(first["tenants"]) == 2 and len(first["lines"]) == 2
    async with running(settings):
        pass
    assert snapshot(str(tmp_path / "config.db")) == first  # byte-identical, timestamps included

    # an edited seed updates in place and adds nothing
    write_seed(settings.seed_file, [tenant_body(name="Acme Renamed")], [])
    async with running(settings) as c:
        tenants = (await c.get("/v1/tenants", headers=admin)).json()
        assert [(t["id"], t["name"]) for t in tenants] == [
            ("acme", "Acme Renamed"),
            ("globex", "Globex"),
        ]
        assert len((await c.get("/v1/lines", headers=admin)).json()) == 2


@pytest.mark.parametrize(
    ("tenants", "lines", "needle"),
    [
        ([tenant_body(jira_base_url="nope")], [], "tenants.0.jira_base_url"),
        ([], [{"number": NUMBER, **line_body("ghost")}], "unknown tenant"),
    ],
)
async def test_bad_seed_refuses_to_start(tmp_path, tenants, lines, needle):
    app = create_app(seeded_settings(tmp_path, tenants, lines))
    with pytest.raises(RuntimeError) as exc:
        async with app.router.lifespan_context(app):
            pass
    assert needle in str(exc.value)
    for value in PLAIN.values():
        assert value not in str(exc.value)
