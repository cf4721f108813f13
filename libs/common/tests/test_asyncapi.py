"""The AsyncAPI 3.0 document (``events/asyncapi.py``, committed as ``schemas/asyncapi.json``):
up to date with the models and the services' routes, valid against the AsyncAPI 3.0.0 JSON
Schema (vendored, offline), every reference resolving, every message on a channel, and real
records of the bus matching what it says of headers and payloads."""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from voiceticket_common.bus import envelope as wire
from voiceticket_common.events import EVENT_CLASSES, CallTranscribed, RecordingCompleted, TicketCreated
from voiceticket_common.events.asyncapi import (
    Participant,
    check,
    document,
    document_path,
    render_document,
    services,
)
from voiceticket_common.testing import ticket_created

OFFICIAL_SCHEMA = Path(__file__).parent / "data" / "asyncapi-3.0.0.schema.json"


@cache
def participants() -> tuple[Participant, ...]:
    return tuple(services())


@pytest.fixture(scope="module")
def committed() -> dict[str, Any]:
    return json.loads(document_path().read_text())


def test_the_committed_document_is_what_the_code_generates() -> None:
    assert check(document_path(), participants()) == [], "run `make schemas` and commit schemas/asyncapi.json"


def test_a_changed_route_makes_the_check_fail(tmp_path: Path) -> None:
    path = tmp_path / "asyncapi.json"
    path.write_text(render_document(document(participants())))
    assert check(path, participants()) == []
    fewer = [p for p in participants() if p.name != "notifier"]
    assert check(path, fewer), "a service's operations gone: the committed document is stale"


def test_the_document_is_valid_asyncapi_3(committed: dict[str, Any]) -> None:
    validator = jsonschema.Draft7Validator(json.loads(OFFICIAL_SCHEMA.read_text()))
    errors = [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message[:200]}" for e in validator.iter_errors(committed)
    ]
    assert errors == []
    broken = copy.deepcopy(committed)
    broken["operations"]["analyzer-receive-call-transcribed-v1"]["action"] = "publish"
    del broken["info"]
    assert len(list(validator.iter_errors(broken))) >= 2, "the validator catches what AsyncAPI 3 forbids"


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        own = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return own + [r for value in node.values() for r in _refs(value)]
    if isinstance(node, list):
        return [r for item in node for r in _refs(item)]
    return []


def _resolve(doc: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), f"{ref}: only references inside the document"
    node: Any = doc
    for part in ref.removeprefix("#/").split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        assert isinstance(node, dict) and part in node, f"{ref} does not resolve"
        node = node[part]
    return node


def test_every_reference_resolves_inside_the_document(committed: dict[str, Any]) -> None:
    refs = _refs(committed)
    assert refs
    for ref in refs:
        _resolve(committed, ref)
    assert not any(r.startswith("#/$defs/") for r in refs), "JSON Schema $defs are hoisted into components"


def test_every_message_is_on_a_channel_and_operations_use_their_channels_messages(
    committed: dict[str, Any],
) -> None:
    on_channels = {
        ref["$ref"] for channel in committed["channels"].values() for ref in channel["messages"].values()
    }
    messages = {f"#/components/messages/{name}" for name in committed["components"]["messages"]}
    assert messages == on_channels
    for name, operation in committed["operations"].items():
        channel_ref = operation["channel"]["$ref"]
        _resolve(committed, channel_ref)
        for message in operation["messages"]:
            assert message["$ref"].startswith(channel_ref + "/messages/"), name
            _resolve(committed, message["$ref"])


def test_channels_are_the_topics_of_every_event_version(committed: dict[str, Any]) -> None:
    addresses = {channel["address"] for channel in committed["channels"].values()}
    assert addresses == {cls.topic() for cls in EVENT_CLASSES}
    names = {m["name"] for m in committed["components"]["messages"].values()}
    assert names == {cls.schema_name() for cls in EVENT_CLASSES}


def test_operations_follow_the_services_routes(committed: dict[str, Any]) -> None:
    ops = committed["operations"]
    transcriber = ops["transcriber-receive-call-recording-completed-v1"]
    assert transcriber["action"] == "receive"
    assert transcriber["bindings"]["kafka"]["groupId"]["enum"] == ["voiceticket-transcriber"]
    assert ops["transcriber-send-call-transcribed-v1"]["action"] == "send"
    assert ops["analyzer-receive-call-transcribed-v1"]["channel"]["$ref"] == "#/channels/call-transcribed-v1"
    sends = {name for name in ops if name.startswith("ingress-send-")}
    # the call's seven, sms.received (two-way SMS) and request.status_changed (status texts)
    assert len(sends) == 9 and not any(name.startswith("ingress-receive-") for name in ops)
    expected = {
        (p.name, action, cls.schema_name())
        for p in participants()
        for action, classes in (("send", p.produces), ("receive", p.consumes), ("follow", p.follows))
        for cls in classes
    }
    actual = {
        (name.split(f"-{kind}-")[0], kind, op["messages"][0]["$ref"].rsplit("/", 1)[1])
        for name, op in ops.items()
        for kind in ["follow" if "-follow-" in name else op["action"]]
    }
    assert actual == expected
    assert {RecordingCompleted, CallTranscribed, TicketCreated} <= {
        cls for p in participants() for cls in p.consumes
    }


def _validate(committed: dict[str, Any], instance: Any, ref: str) -> None:
    root = {"components": committed["components"], "$ref": ref}
    jsonschema.Draft202012Validator(root).validate(instance)


def test_a_real_record_matches_its_message(committed: dict[str, Any]) -> None:
    event = ticket_created()
    key, value, headers = wire.encode(wire.envelope_for(event, "jira-writer"))
    headers.append(("traceparent", b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"))
    message = f"#/components/messages/{event.schema_name()}"
    _validate(committed, wire.header_map(headers), f"{message}/headers")
    _validate(committed, json.loads(value), f"{message}/payload")
    _validate(committed, key.decode(), f"{message}/bindings/kafka/key")
    wrong = dict(wire.header_map(headers), ce_type=CallTranscribed.ce_type())
    with pytest.raises(jsonschema.ValidationError):
        _validate(committed, wrong, f"{message}/headers")
    missing = {k: v for k, v in wire.header_map(headers).items() if k != "ce_subject"}
    with pytest.raises(jsonschema.ValidationError):
        _validate(committed, missing, f"{message}/headers")
