"""Request-type fields in the Jira stand-in: how a test configures them, and how the values of a
create-request are checked against them the way JSM does.

A field may list ``validValues`` (select lists, priority): a value must then name one of them by
``id`` (the value) or by ``name``/``value`` (the label), as in Jira's field input formats. Required
fields must have a value unless they are hidden (``visible: false``): JSM fills hidden fields with
their preset values itself.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from voiceticket_sandbox.state import RequestType

DEFAULT_FIELDS = [
    {"fieldId": "summary", "name": "Summary", "required": True},
    {"fieldId": "description", "name": "Description", "required": False},
]


class FieldValueIn(BaseModel):
    """A JSM ``RequestTypeFieldValueDTO``: ``value`` is the id Jira stores, ``label`` its name."""

    value: str
    label: str
    children: list[FieldValueIn] = Field(default_factory=list)


class FieldIn(BaseModel):
    """One request-type field, as ``GET .../requesttype/{id}/field`` will report it."""

    fieldId: str
    name: str
    required: bool = False
    visible: bool = True
    validValues: list[FieldValueIn] = Field(default_factory=list)
    defaultValues: list[FieldValueIn] = Field(default_factory=list)
    presetValues: list[str] = Field(default_factory=list)
    jiraSchema: dict[str, Any] | None = None


def configured_fields(fields: list[FieldIn] | None) -> list[dict[str, Any]]:
    """The stored form of a request type's fields (the two defaults when none are given)."""
    if fields is None:
        return [dict(f) for f in DEFAULT_FIELDS]
    return [f.model_dump() for f in fields]


def json_schema_of(field: dict[str, Any]) -> dict[str, Any]:
    """The field's ``jiraSchema`` (a platform ``JsonTypeBean``), guessed from its id if not configured."""
    if field.get("jiraSchema"):
        return dict(field["jiraSchema"])
    field_id = field["fieldId"]
    if field_id == "priority":
        return {"type": "priority", "system": "priority"}
    if field_id.startswith("customfield_"):
        return {
            "type": "string",
            "custom": "com.atlassian.jira.plugin.system.customfieldtypes:textfield",
            "customId": int(field_id.removeprefix("customfield_")),
        }
    return {"type": "string", "system": field_id}


def field_problem(request_type: RequestType, values: dict[str, Any]) -> str | None:
    """Why JSM would refuse these ``requestFieldValues``, or None."""
    known = {f["fieldId"]: f for f in request_type.fields}
    for field_id, value in values.items():
        if field_id not in known:
            return f"The field '{field_id}' is not valid for request type '{request_type.name}'."
        problem = _value_problem(known[field_id], value)
        if problem:
            return problem
    for field in request_type.fields:
        value = values.get(field["fieldId"])
        missing = value is None or value == "" or value == []
        if field.get("required") and field.get("visible", True) and missing:
            return f"{field['name']}: You must specify a value for the field '{field['fieldId']}'."
    return None


def _value_problem(field: dict[str, Any], value: Any) -> str | None:
    allowed = field.get("validValues") or []
    if not allowed:
        return None
    ids = {v["value"] for v in allowed}
    labels = {v["label"] for v in allowed}
    for item in value if isinstance(value, list) else [value]:
        if not isinstance(item, dict):
            return f"{field['name']}: Specify a valid 'id' or 'name' for {field['name']}."
        if "id" in item:
            ok = str(item["id"]) in ids
        else:
            ok = str(item.get("name", item.get("value"))) in labels
        if not ok:
            return f"{field['name']}: Specify a valid 'id' or 'name' for {field['name']}."
    return None
