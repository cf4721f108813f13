"""``requestFieldValues`` for a request type: only the fields it has, in Jira's input formats.

Summary always; description when the request type has it; priority mapped from the analysis by the
names of the priority field's valid values; the caller's number when the line names a phone field
and the request type has it; required fields we cannot know filled with their default values. A
required field with no default makes the request impossible: a permanent error names it.

The summary and the phone number are plain-text fields: cleaned of control and bidi characters and
made one line (``jira_text.jira_summary``/``plain_line``), never wiki-escaped, since Jira would show
the backslashes. The description arrives as wiki text already escaped by its builder.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from voiceticket_common.bus import PermanentError
from voiceticket_common.events import Priority

from .jira_text import jira_summary, plain_line
from .ports import FieldValue, RequestTypeField, RequestTypeFields

log = logging.getLogger(__name__)

# Jira's default priority scheme; a site with other names gets no priority (Jira's default applies).
PRIORITY_NAMES = {p: p.value.lower() for p in Priority}
# jiraSchema types whose values are given by id ({"id": "10001"})
_BY_ID = {"option", "priority", "securitylevel", "resolution", "component", "version", "issuetype", "project"}


class RequiredFieldUnknown(PermanentError):
    """A required field of the request type that Voice to Ticket cannot fill and that has no default."""


@dataclass(frozen=True)
class Wanted:
    """What we would like the request to say; what is sent depends on the request type's fields."""

    summary: str  # plain text, cleaned here
    description: str  # wiki markup, escaped by whoever built it
    priority: Priority | None = None
    phone_field_id: str | None = None
    caller_number: str | None = None


def request_field_values(wanted: Wanted, meta: RequestTypeFields, request_type_id: str) -> dict[str, Any]:
    values: dict[str, Any] = {"summary": jira_summary(wanted.summary)}
    if meta.get("description") is not None:
        values["description"] = wanted.description
    else:
        # The CallSid in the description is how a crashed attempt's request is found (ADR 3).
        log.warning(
            "the request type has no description field; the analysis and the CallSid are not on the request",
            extra={"request_type_id": request_type_id},
        )
    priority_field = meta.get("priority")
    if wanted.priority is not None and priority_field is not None:
        choice = _priority_choice(priority_field, wanted.priority)
        if choice is not None:
            values["priority"] = choice
        else:
            log.warning(
                "no priority of the request type matches the analysis; Jira's default applies",
                extra={"request_type_id": request_type_id, "priority": wanted.priority.value},
            )
    caller_number = plain_line(wanted.caller_number or "")
    if wanted.phone_field_id and caller_number:
        if meta.get(wanted.phone_field_id) is not None:
            values[wanted.phone_field_id] = caller_number
        else:
            # The number stays in the issue property; the warning names the field, never the number.
            log.warning(
                "the line's phone field is not on the request type; the caller's number goes to the "
                "issue property only",
                extra={"request_type_id": request_type_id, "field_id": wanted.phone_field_id},
            )
    for field in meta.fields:
        if field.field_id in values or not field.required or not field.visible:
            continue  # hidden fields get their preset values from JSM itself
        if not field.default_values:
            raise RequiredFieldUnknown(
                f"request type {request_type_id} requires the field '{field.name}' ({field.field_id}), "
                "which Voice to Ticket cannot fill and which has no default value: give it a default "
                "or make it optional in the request type"
            )
        values[field.field_id] = input_value(field, field.default_values)
    return values


def _priority_choice(field: RequestTypeField, priority: Priority) -> dict[str, str] | None:
    wanted = PRIORITY_NAMES[priority]
    for value in field.valid_values:
        if value.label.strip().lower() == wanted:
            return {"id": value.value}
    return None


def input_value(field: RequestTypeField, values: tuple[FieldValue, ...]) -> Any:
    """``values`` in the field input format of the field's ``jiraSchema`` type."""
    kind = field.schema_type
    if kind == "array":
        item = field.schema_items or "option"
        if item in ("string", "labels"):
            return [v.value for v in values]
        if item == "user":
            return [{"accountId": v.value} for v in values]
        return [{"id": v.value} for v in values]
    first = values[0]
    if kind in _BY_ID:
        return {"id": first.value}
    if kind == "option-with-child":
        chosen: dict[str, Any] = {"id": first.value}
        if first.children:
            chosen["child"] = {"id": first.children[0].value}
        return chosen
    if kind == "user":
        return {"accountId": first.value}
    if kind == "number":
        number = float(first.value)
        return int(number) if number.is_integer() else number
    return first.value
