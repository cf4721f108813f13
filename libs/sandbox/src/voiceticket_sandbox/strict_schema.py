"""The structured-outputs rules OpenAI enforces on ``strict: true`` JSON schemas.

Every object must set ``additionalProperties: false`` and list every property in ``required``;
``default`` is not permitted; the root must be an object. Messages follow the shape OpenAI uses,
so a schema the real API would refuse is refused here too.
"""

from __future__ import annotations

from typing import Any


def strict_schema_problems(schema: Any) -> list[str]:
    """What makes ``schema`` unacceptable for strict structured outputs (empty: acceptable)."""
    problems: list[str] = []
    if not isinstance(schema, dict) or schema.get("type") != "object":
        problems.append("In context=(), schema must be a JSON Schema of 'type: \"object\"'.")
    _walk(schema, (), problems)
    return problems


def _walk(node: Any, context: tuple[str, ...], problems: list[str]) -> None:
    if not isinstance(node, dict):
        return
    where = f"In context={context!r}"
    if "default" in node:
        problems.append(f"{where}, 'default' is not permitted.")
    properties = node.get("properties")
    if node.get("type") == "object" or isinstance(properties, dict):
        if node.get("additionalProperties") is not False:
            problems.append(f"{where}, 'additionalProperties' is required to be supplied and to be false.")
        missing = [p for p in (properties or {}) if p not in (node.get("required") or [])]
        if missing:
            problems.append(
                f"{where}, 'required' is required to be supplied and to be an array including "
                f"every key in properties. Missing {missing[0]!r}."
            )
    for name, sub in (properties or {}).items():
        _walk(sub, (*context, "properties", name), problems)
    if "items" in node:
        _walk(node["items"], (*context, "items"), problems)
    for key in ("anyOf", "allOf", "oneOf"):
        for index, sub in enumerate(node.get(key) or []):
            _walk(sub, (*context, key, str(index)), problems)
    for key in ("$defs", "definitions"):
        for name, sub in (node.get(key) or {}).items():
            _walk(sub, (*context, key, name), problems)
