"""Which fields a request gets, in which input format, and the request-type field cache."""

from __future__ import annotations

import pytest
from jira_writer_testkit import BASIC_FIELDS, PRIORITIES, SITE, FakeServiceDesk

from voiceticket_common.events import Priority
from voiceticket_jira_writer.field_cache import RequestTypeFieldCache
from voiceticket_jira_writer.field_values import (
    RequiredFieldUnknown,
    Wanted,
    input_value,
    request_field_values,
)
from voiceticket_jira_writer.ports import FieldValue, RequestTypeField, RequestTypeFields

WANTED = Wanted(summary="s", description="d", priority=Priority.LOWEST)


def fields(
    *extra: RequestTypeField, base: tuple[RequestTypeField, ...] = BASIC_FIELDS.fields
) -> RequestTypeFields:
    return RequestTypeFields((*base, *extra))


def test_summary_always_description_only_when_the_request_type_has_it() -> None:
    only_summary = fields(base=(RequestTypeField("summary", "Summary", required=True),))
    assert request_field_values(WANTED, only_summary, "41") == {"summary": "s"}
    assert request_field_values(WANTED, fields(), "41") == {"summary": "s", "description": "d"}


@pytest.mark.parametrize(
    ("priority", "labels", "expected"),
    [
        (Priority.LOWEST, ["Highest", "High", "Medium", "Low", "Lowest"], {"id": "5"}),
        (Priority.HIGH, [" high ", "low"], {"id": "1"}),
        (Priority.MEDIUM, ["P1 - Critical", "P2 - Major"], None),
    ],
    ids=["standard-names", "any-case", "other-scheme"],
)
def test_priority_is_mapped_by_the_names_of_the_valid_values(priority, labels, expected) -> None:
    values = tuple(FieldValue(str(i), label) for i, label in enumerate(labels, 1))
    meta = fields(RequestTypeField("priority", "Priority", valid_values=values, schema_type="priority"))
    got = request_field_values(Wanted("s", "d", priority=priority), meta, "41")
    assert got.get("priority") == expected


def test_no_priority_field_means_no_priority() -> None:
    assert "priority" not in request_field_values(WANTED, fields(), "41")


def test_required_fields_get_their_defaults_and_hidden_ones_are_left_to_jsm() -> None:
    meta = fields(
        RequestTypeField("customfield_1", "Site", True, default_values=(FieldValue("10101", "Oslo"),), schema_type="option"),
        RequestTypeField("customfield_2", "Hidden", True, visible=False),
        RequestTypeField("customfield_3", "Optional"),
        RequestTypeField("priority", "Priority", True, valid_values=PRIORITIES, default_values=(PRIORITIES[2],),
                         schema_type="priority"),
    )  # fmt: skip
    got = request_field_values(Wanted("s", "d", priority=None), meta, "41")
    assert got == {
        "summary": "s",
        "description": "d",
        "customfield_1": {"id": "10101"},
        "priority": {"id": "3"},
    }


def test_a_required_field_without_default_is_a_permanent_error_naming_it() -> None:
    meta = fields(RequestTypeField("customfield_10060", "Contract number", True))
    with pytest.raises(
        RequiredFieldUnknown,
        match=r"request type 41 requires the field 'Contract number' \(customfield_10060\)",
    ):
        request_field_values(WANTED, meta, "41")


@pytest.mark.parametrize(
    ("schema_type", "items", "defaults", "expected"),
    [
        ("string", None, [FieldValue("text")], "text"),
        ("number", None, [FieldValue("42")], 42),
        ("number", None, [FieldValue("2.5")], 2.5),
        ("date", None, [FieldValue("2025-01-31")], "2025-01-31"),
        ("option", None, [FieldValue("10001", "A")], {"id": "10001"}),
        ("option-with-child", None, [FieldValue("1", "EU", (FieldValue("11", "Berlin"),))],
         {"id": "1", "child": {"id": "11"}}),
        ("array", "option", [FieldValue("1"), FieldValue("2")], [{"id": "1"}, {"id": "2"}]),
        ("array", "string", [FieldValue("phone"), FieldValue("vip")], ["phone", "vip"]),
        ("user", None, [FieldValue("qm:1")], {"accountId": "qm:1"}),
    ],
)  # fmt: skip
def test_default_values_in_jiras_input_formats(schema_type, items, defaults, expected) -> None:
    field = RequestTypeField("customfield_1", "F", True, schema_type=schema_type, schema_items=items)
    assert input_value(field, tuple(defaults)) == expected


async def test_field_lists_are_cached_per_site_desk_and_request_type_until_the_ttl() -> None:
    now = [0.0]
    desk = FakeServiceDesk()
    cache = RequestTypeFieldCache(desk, ttl_seconds=60, clock=lambda: now[0])
    first = await cache.get(SITE, "4", "41")
    second = await cache.get(SITE, "4", "41")
    await cache.get(SITE, "4", "42")
    now[0] = 61
    third = await cache.get(SITE, "4", "41")
    assert [first[1], second[1], third[1]] == [False, True, False]
    assert desk.field_lookups == 3
