"""The committed schemas are a contract: this fails when a released version changes incompatibly."""

from __future__ import annotations

import copy
import json

from voiceticket_common.events import EVENT_CLASSES
from voiceticket_common.events.schemas import breaking_changes, check, repo_schema_dir, schema_of


def test_every_event_version_has_an_up_to_date_committed_schema() -> None:
    assert check(repo_schema_dir()) == []


def test_committed_schemas_match_topics_and_types() -> None:
    for cls in EVENT_CLASSES:
        committed = json.loads((repo_schema_dir() / f"{cls.schema_name()}.json").read_text())
        assert committed["x-topic"] == cls.topic()
        assert committed["x-ce-type"] == cls.ce_type()


def _ticket_schema() -> dict:
    from voiceticket_common.events import TicketCreated

    return schema_of(TicketCreated)


def test_removing_a_property_is_breaking() -> None:
    old = _ticket_schema()
    new = copy.deepcopy(old)
    del new["properties"]["issue_key"]
    assert any("issue_key: property removed" in p for p in breaking_changes(old, new))


def test_making_a_property_required_is_breaking() -> None:
    old = _ticket_schema()
    new = copy.deepcopy(old)
    new["required"].append("language")
    assert any("language: property became required" in p for p in breaking_changes(old, new))


def test_changing_a_type_is_breaking() -> None:
    old = _ticket_schema()
    new = copy.deepcopy(old)
    new["properties"]["issue_id"] = {"type": "integer"}
    assert any("issue_id: type changed" in p for p in breaking_changes(old, new))


def test_removing_an_enum_value_is_breaking() -> None:
    from voiceticket_common.events import CallAnalyzed

    old = schema_of(CallAnalyzed)
    new = copy.deepcopy(old)
    new["$defs"]["Priority"]["enum"].remove("highest")
    assert any("enum values removed" in p for p in breaking_changes(old, new))


def test_adding_an_optional_property_is_compatible() -> None:
    old = _ticket_schema()
    new = copy.deepcopy(old)
    new["properties"]["channel"] = {"type": "string", "default": "voice"}
    assert breaking_changes(old, new) == []
