"""The structured-outputs rules OpenAI enforces on ``strict: true`` JSON schemas.

Every object must set ``additionalProperties: false`` and list every property in ``required``;
``default`` is not permitted; the root must be an object. Messages follow the shape OpenAI uses,
so a schema the real API would refuse is refused here too.

Also checked, from the documented limits of the structured-outputs guide: the composition
keywords ``allOf``, ``not``, ``if``/``then``/``else``, ``dependentRequired`` and
``dependentSchemas`` are unsupported; at most 10 levels of nested objects, 5000 properties and
1000 enum values in all.
"""

from __future__ import annotations

from typing import Any


def strict_schema_problems(schema: Any) -> list[str]:
    """What makes ``schema`` unacceptable for strict structured outputs (empty: acceptable)."""
    problems: list[str] = []
    if not isinstance(schema, dict) or schema.get("type") != "object":
        problems.append("In context=(), schema must be a JSON Schema of 'type: \"object\"'.")
    _walk(schema, (), problems)
    totals = _Totals()
    totals.count(schema, 0)
    if totals.depth > MAX_OBJECT_DEPTH:
        problems.append(f"Schema nests objects {totals.depth} levels deep; the limit is {MAX_OBJECT_DEPTH}.")
    if totals.properties > MAX_PROPERTIES:
        problems.append(f"Schema has {totals.properties} properties; the limit is {MAX_PROPERTIES}.")
    if totals.enum_values > MAX_ENUM_VALUES:
        problems.append(f"Schema has {totals.enum_values} enum values; the limit is {MAX_ENUM_VALUES}.")
    return problems


MAX_OBJECT_DEPTH = 10
MAX_PROPERTIES = 5000
MAX_ENUM_VALUES = 1000
UNSUPPORTED = ("allOf", "not", "if", "then", "else", "dependentRequired", "dependentSchemas")


class _Totals:
    def __init__(self) -> None:
        self.depth = self.properties = self.enum_values = 0

    def count(self, node: Any, depth: int) -> None:
        if isinstance(node, list):
            for item in node:
                self.count(item, depth)
            return
        if not isinstance(node, dict):
            return
        properties = node.get("properties")
        if isinstance(properties, dict):
            depth += 1
            self.depth = max(self.depth, depth)
            self.properties += len(properties)
        if isinstance(node.get("enum"), list):
            self.enum_values += len(node["enum"])
        for key, value in node.items():
            if key == "properties" and isinstance(value, dict):
                for sub in value.values():
                    self.count(sub, depth)
            elif key in ("items", "anyOf", "$defs", "definitions"):
                self.count(
                    list(value.values()) if isinstance(value, dict) and key != "items" else value, depth
                )


def _walk(node: Any, context: tuple[str, ...], problems: list[str]) -> None:
    if not isinstance(node, dict):
        return
    where = f"In context={context!r}"
    if "default" in node:
        problems.append(f"{where}, 'default' is not permitted.")
    for keyword in UNSUPPORTED:
        if keyword in node:
            problems.append(f"{where}, '{keyword}' is not permitted.")
    if not context and "anyOf" in node:
        problems.append(f"{where}, the root schema must not be 'anyOf'.")
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
