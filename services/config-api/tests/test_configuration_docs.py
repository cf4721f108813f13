"""docs/configuration.md against the API's schemas (issue #13, point 7): every tenant and line
field is documented with its right default, nothing documented is gone from the schemas, and the
example files validate. A field added to a schema fails here, named, until it is documented."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from voiceticket_config_api.schemas import (
    LineIn,
    ProviderConcurrency,
    RedactionSettings,
    SeedFile,
    TenantCreate,
)

DOCS = Path(__file__).resolve().parents[3] / "docs"
PAGE = DOCS / "configuration.md"
SECTIONS: dict[str, type[BaseModel]] = {
    "## Tenant": TenantCreate,
    "### redaction": RedactionSettings,
    "### provider_concurrency": ProviderConcurrency,
    "## Line": LineIn,
}
ROW = re.compile(r"^\| `(?P<field>[a-z_]+)` \| (?P<type>[^|]+) \| (?P<default>[^|]+) \| (?P<meaning>.+) \|$")


def documented(page: str) -> dict[str, dict[str, str]]:
    """Section heading -> field -> its default cell, from the tables under each heading."""
    tables: dict[str, dict[str, str]] = {heading: {} for heading in SECTIONS}
    current: str | None = None
    for line in page.splitlines():
        if line.startswith("#"):
            current = line.strip() if line.strip() in SECTIONS else None
            continue
        match = ROW.match(line.strip())
        if current is not None and match:
            tables[current][match["field"]] = match["default"].strip()
    return tables


def schema_default(model: type[BaseModel], name: str) -> str:
    """The default as the page writes it: ``required``, or the JSON value in backticks."""
    info = model.model_fields[name]
    if info.is_required():
        return "required"
    value: Any = info.default_factory() if info.default_factory is not None else info.default  # type: ignore[call-arg]
    return f"`{json.dumps(value, ensure_ascii=False)}`"


def test_every_field_is_documented_with_its_default() -> None:
    tables = documented(PAGE.read_text(encoding="utf-8"))
    missing, gone, wrong = [], [], []
    for heading, model in SECTIONS.items():
        rows = tables[heading]
        missing += [f"{heading} {name}" for name in model.model_fields if name not in rows]
        gone += [f"{heading} {name}" for name in rows if name not in model.model_fields]
        wrong += [
            f"{heading} {name}: page says {rows[name]}, schema {schema_default(model, name)}"
            for name in model.model_fields
            if name in rows and rows[name] != schema_default(model, name)
        ]
    assert not missing, f"fields missing from docs/configuration.md: {missing}"
    assert not gone, f"docs/configuration.md documents fields the schemas no longer have: {gone}"
    assert not wrong, f"wrong defaults in docs/configuration.md: {wrong}"


def test_the_check_notices_a_missing_field_and_a_wrong_default() -> None:
    page = PAGE.read_text(encoding="utf-8")
    without = "\n".join(line for line in page.splitlines() if not line.startswith("| `voice` |"))
    assert "voice" not in documented(without)["## Line"]
    assert documented(page)["## Line"]["voice"] == schema_default(LineIn, "voice")
    assert schema_default(LineIn, "max_recording_seconds") == "`120`"
    assert schema_default(TenantCreate, "vocabulary") == "`[]`"
    assert schema_default(TenantCreate, "id") == "required"


@pytest.mark.parametrize(("name", "model"), [("tenant.json", TenantCreate), ("line.json", LineIn)])
def test_the_example_files_validate(name: str, model: type[BaseModel]) -> None:
    data = json.loads((DOCS / "examples" / name).read_text(encoding="utf-8"))
    model.model_validate(data)
    # every field is shown in one example or the other, or has its own table
    assert set(data) <= set(model.model_fields)


def test_the_examples_make_a_seed_file() -> None:
    tenant = json.loads((DOCS / "examples" / "tenant.json").read_text(encoding="utf-8"))
    line = json.loads((DOCS / "examples" / "line.json").read_text(encoding="utf-8"))
    seed = SeedFile.model_validate({"tenants": [tenant], "lines": [{**line, "number": "+14155550100"}]})
    assert seed.lines[0].tenant_id == seed.tenants[0].id
