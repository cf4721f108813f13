"""JSON Schemas of the events, and the compatibility rule committed schemas are held to.

``python -m voiceticket_common.events.schemas write`` regenerates ``schemas/`` at the repository root;
``check`` fails when a registered event has no committed schema or its model drifted from it.
A change is *compatible* for consumers of an existing version when every document valid under the
old schema is still produced the same way: no property removed or renamed, no property newly
required, no type narrowed or changed, no enum value removed. Anything else needs a new version.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from .base import Event
from .registry import EVENT_CLASSES


def schema_of(cls: type[Event]) -> dict[str, Any]:
    schema = cls.model_json_schema(mode="serialization")
    schema["$id"] = f"https://voiceticket.dev/schemas/{cls.schema_name()}.json"
    schema["x-ce-type"] = cls.ce_type()
    schema["x-topic"] = cls.topic()
    return schema


def render(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def _resolve(schema: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    ref = node.get("$ref")
    if ref and ref.startswith("#/$defs/"):
        return _resolve(schema, schema["$defs"][ref.removeprefix("#/$defs/")])
    return node


def _types(node: dict[str, Any]) -> set[str]:
    if "anyOf" in node:
        out: set[str] = set()
        for option in node["anyOf"]:
            out |= _types(option)
        return out
    t = node.get("type")
    if isinstance(t, list):
        return set(t)
    if t:
        return {t}
    if "$ref" in node:
        return {"object"}
    if "enum" in node:
        return {"string"}
    return {"any"}


def breaking_changes(old: dict[str, Any], new: dict[str, Any], path: str = "$") -> list[str]:
    """Reasons why ``new`` breaks consumers written against ``old`` (empty when compatible)."""

    return _compare(old, new, old, new, path)


def _compare(
    old_root: dict[str, Any],
    new_root: dict[str, Any],
    old: dict[str, Any],
    new: dict[str, Any],
    path: str,
) -> list[str]:
    problems: list[str] = []
    old = _resolve(old_root, old)
    new = _resolve(new_root, new)
    if "anyOf" in old or "anyOf" in new:
        old_t, new_t = _types(old), _types(new)
        if not old_t <= new_t | {"any"} and "any" not in new_t:
            problems.append(f"{path}: type changed from {sorted(old_t)} to {sorted(new_t)}")
        return problems
    old_t, new_t = _types(old), _types(new)
    if old_t != new_t and "any" not in new_t:
        problems.append(f"{path}: type changed from {sorted(old_t)} to {sorted(new_t)}")
        return problems
    if "enum" in old:
        removed = set(old["enum"]) - set(new.get("enum", old["enum"]))
        if removed:
            problems.append(f"{path}: enum values removed: {sorted(removed)}")
    old_props = old.get("properties", {})
    new_props = new.get("properties", {})
    for name in old_props:
        if name not in new_props:
            problems.append(f"{path}.{name}: property removed")
        else:
            problems += _compare(old_root, new_root, old_props[name], new_props[name], f"{path}.{name}")
    newly_required = set(new.get("required", [])) - set(old.get("required", []))
    for name in sorted(newly_required):
        problems.append(f"{path}.{name}: property became required")
    if old.get("additionalProperties") is not False and new.get("additionalProperties") is False:
        problems.append(f"{path}: additional properties no longer allowed")
    if "items" in old and "items" in new:
        problems += _compare(old_root, new_root, old["items"], new["items"], f"{path}[]")
    return problems


def repo_schema_dir() -> Path:
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "schemas").is_dir() and (parent / "pyproject.toml").is_file():
            return parent / "schemas"
    raise FileNotFoundError("schemas/ not found above " + str(here))


def write(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for cls in EVENT_CLASSES:
        target = directory / f"{cls.schema_name()}.json"
        target.write_text(render(schema_of(cls)))
        written.append(target)
    return written


def check(directory: Path) -> list[str]:
    """Problems between the models and the committed schemas; empty when all is well."""

    problems = []
    for cls in EVENT_CLASSES:
        target = directory / f"{cls.schema_name()}.json"
        if not target.exists():
            problems.append(f"{cls.schema_name()}: no committed schema (run `make schemas`)")
            continue
        committed = json.loads(target.read_text())
        current = schema_of(cls)
        breaks = breaking_changes(committed, current)
        problems += [f"{cls.schema_name()}: {b} (publish a new version instead)" for b in breaks]
        if not breaks and render(committed) != render(current):
            problems.append(f"{cls.schema_name()}: compatible change not committed (run `make schemas`)")
    return problems


def main(argv: list[str]) -> int:
    directory = repo_schema_dir()
    if argv[:1] == ["write"]:
        problems = [p for p in check(directory) if "publish a new version" in p]
        if problems:
            print("\n".join(problems), file=sys.stderr)
            return 1
        for path in write(directory):
            print(path.relative_to(directory.parent))
        return 0
    problems = check(directory)
    print("\n".join(problems) or "schemas up to date")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
