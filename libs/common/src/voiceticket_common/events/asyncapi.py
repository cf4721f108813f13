"""The AsyncAPI 3.0 document of the events, generated from the models and the services' routes.

Channels are the topics as the bus names them (``voiceticket.<type>.v<major>``), one message per
event version with its JSON Schema as the payload and the CloudEvents binary-mode headers of
``bus/envelope.py`` as the message headers; operations are what each service sends (its
``produces``) and receives (its routes, with its consumer group). ``python -m
voiceticket_common.events.asyncapi write`` regenerates ``schemas/asyncapi.json`` next to the JSON
Schemas (``make schemas``); ``check`` fails when the committed document differs from what the
code generates (``make schemas-check``, and ``libs/common/tests/test_asyncapi.py``).

The services are found by importing their ``bootstrap`` modules (``SERVICE_MODULES``): this
package does not depend on them, the workspace that generates the document has them all.
"""

from __future__ import annotations

import importlib
import inspect
import json
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..bus import envelope as wire
from ..bus.port import dead_letter_topic
from .base import Event
from .registry import EVENT_CLASSES
from .schemas import render, repo_schema_dir, schema_of

ASYNCAPI_VERSION = "3.0.0"
KAFKA_BINDING_VERSION = "0.5.0"
DOCUMENT_NAME = "asyncapi.json"

SERVICE_MODULES: tuple[str, ...] = (
    "voiceticket_ingress.bootstrap",
    "voiceticket_transcriber.bootstrap",
    "voiceticket_analyzer.bootstrap",
    "voiceticket_jira_writer.bootstrap",
    "voiceticket_notifier.bootstrap",
    "voiceticket_config_api.outbox",
)
"""Where each service exports its ``SERVICE`` (a ``ConsumerService`` or ``WebService``)."""


@dataclass(frozen=True)
class Participant:
    """What the document needs of a service: its name, its consumer group, what it consumes
    and what it produces, and what every replica of it follows without a group (``follows``)."""

    name: str
    group: str | None
    consumes: Sequence[type[Event]]
    produces: Sequence[type[Event]]
    follows: Sequence[type[Event]] = ()


def participant(service: Any) -> Participant:
    """A ``ConsumerService`` (group, routes) or a ``WebService`` (publishes only)."""
    consumes = list(getattr(service, "consumes", []))
    return Participant(
        name=service.name,
        group=getattr(service, "group", None) if consumes else None,
        consumes=consumes,
        produces=list(service.produces),
        follows=list(getattr(service, "follows", [])),
    )


def services(modules: Iterable[str] = SERVICE_MODULES) -> list[Participant]:
    return [participant(importlib.import_module(module).SERVICE) for module in modules]


def _ref(*path: str) -> dict[str, str]:
    return {"$ref": "#/" + "/".join(path)}


def _component_schemas(classes: Sequence[type[Event]]) -> dict[str, Any]:
    """Each event's JSON Schema as a component, its ``$defs`` hoisted beside it (shared when
    identical, prefixed with the event's name when two events define one name differently) and
    its ``$ref``s rewritten to point there. ``$id`` becomes ``x-json-schema-id``: a schema with an
    ``$id`` would resolve its references against that URL, not this document."""

    defs: dict[str, list[tuple[str, Any]]] = {}
    for cls in classes:
        for name, node in schema_of(cls).get("$defs", {}).items():
            defs.setdefault(name, []).append((cls.schema_name(), node))
    shared = {name for name, uses in defs.items() if all(node == uses[0][1] for _, node in uses)}

    def target(owner: str, name: str) -> str:
        return name if name in shared else f"{owner}.{name}"

    def rewrite(node: Any, owner: str) -> Any:
        if isinstance(node, dict):
            out = {key: rewrite(value, owner) for key, value in node.items()}
            ref = out.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                out["$ref"] = "#/components/schemas/" + target(owner, ref.removeprefix("#/$defs/"))
            return out
        if isinstance(node, list):
            return [rewrite(item, owner) for item in node]
        return node

    components: dict[str, Any] = {}
    for cls in classes:
        schema = json.loads(render(schema_of(cls)))  # render: sorted keys, a stable document
        owner = cls.schema_name()
        for name, node in schema.pop("$defs", {}).items():
            components[target(owner, name)] = rewrite(node, owner)
        schema["x-json-schema-id"] = schema.pop("$id")
        components[owner] = rewrite(schema, owner)
    return dict(sorted(components.items()))


def _cloudevents_headers() -> dict[str, Any]:
    return {
        "type": "object",
        "description": "CloudEvents 1.0 binary mode on Kafka headers (bus/envelope.py), plus W3C trace context.",
        "required": [
            "ce_specversion",
            "ce_id",
            "ce_type",
            "ce_source",
            "ce_time",
            "ce_subject",
            "content-type",
        ],
        "properties": {
            "ce_specversion": {"type": "string", "const": wire.SPEC_VERSION},
            "ce_id": {
                "type": "string",
                "format": "uuid",
                "description": "Derived from (CallSid, type): a replayed step produces the same id.",
            },
            "ce_type": {"type": "string", "description": "io.voiceticket.<type>.v<major>"},
            "ce_source": {"type": "string", "description": "The producing service."},
            "ce_time": {"type": "string", "format": "date-time", "description": "When the fact happened."},
            "ce_subject": {
                "type": "string",
                "description": "What the event is about, the record key too: the call's Twilio "
                "CallSid (config.changed: the tenant id; each message says which).",
            },
            "content-type": {"type": "string", "const": wire.CONTENT_TYPE},
            "traceparent": {"type": "string", "description": "W3C trace context of the producing span."},
            "baggage": {
                "type": "string",
                "description": "W3C baggage: voiceticket.t0 (when the caller hung up); no personal data.",
            },
        },
    }


def _message(cls: type[Event]) -> dict[str, Any]:
    personal = cls.personal_fields()
    sealed = (
        f" Personal fields ({', '.join(personal)}) travel sealed: the value holds a `sealed` member "
        "in their place (docs/events.md, 'Sealed personal data')."
        if personal
        else ""
    )
    return {
        "name": cls.schema_name(),
        "title": cls.__name__,
        "summary": inspect.cleandoc(cls.__doc__ or cls.__name__).split("\n\n")[0].replace("\n", " "),
        "description": f"CloudEvents type `{cls.ce_type()}` on topic `{cls.topic()}`.{sealed}",
        "contentType": wire.CONTENT_TYPE,
        "headers": {
            "type": "object",
            "allOf": [
                _ref("components", "schemas", "CloudEventsHeaders"),
                {
                    "type": "object",
                    "properties": {
                        "ce_type": {"type": "string", "const": cls.ce_type()},
                        "ce_subject": cls.key_schema(),
                    },
                },
            ],
        },
        "payload": _ref("components", "schemas", cls.schema_name()),
        "correlationId": {"location": "$message.header#/ce_subject"},
        "bindings": {
            "kafka": {
                "key": cls.key_schema(),
                "bindingVersion": KAFKA_BINDING_VERSION,
            }
        },
    }


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:]


def _channel_id(cls: type[Event]) -> str:
    return cls.schema_name().replace(".", "-")


def _operations(participants: Sequence[Participant]) -> dict[str, Any]:
    operations: dict[str, Any] = {}
    for service in participants:
        for action, classes in (
            ("send", service.produces),
            ("receive", service.consumes),
            ("follow", service.follows),
        ):
            for cls in classes:
                channel = _channel_id(cls)
                operation: dict[str, Any] = {
                    "action": "receive" if action == "follow" else action,
                    "channel": _ref("channels", channel),
                    "title": f"{service.name} {action}s {cls.schema_name()}",
                    "messages": [_ref("channels", channel, "messages", cls.schema_name())],
                }
                if action == "receive" and service.group:
                    operation["description"] = (
                        f"Consumer group `{service.group}`; what it gives up on goes to "
                        f"`{dead_letter_topic(service.group)}` with the reason in `dlq_*` headers."
                    )
                    operation["bindings"] = {
                        "kafka": {
                            "groupId": {"type": "string", "enum": [service.group]},
                            "clientId": {"type": "string"},
                            "bindingVersion": KAFKA_BINDING_VERSION,
                        }
                    }
                if action == "follow":
                    operation["description"] = (
                        "Every replica reads every record, from about when it started, without a "
                        "consumer group or commits (the bus's `follow`): each drops what it cached."
                    )
                operations[f"{service.name}-{action}-{channel}"] = operation
    return dict(sorted(operations.items()))


def document(
    participants: Sequence[Participant], classes: Sequence[type[Event]] = EVENT_CLASSES
) -> dict[str, Any]:
    """The AsyncAPI 3.0 document of ``classes``, sent and received by ``participants``."""
    producers = {cls: [s.name for s in participants if cls in s.produces] for cls in classes}
    consumers = {
        cls: [s.name for s in participants if cls in s.consumes or cls in s.follows] for cls in classes
    }
    channels = {
        _channel_id(cls): {
            "address": cls.topic(),
            "title": cls.topic(),
            "description": (
                f"Produced by {', '.join(producers[cls]) or 'no service'}; consumed by "
                f"{', '.join(consumers[cls]) or 'no service (audit, metrics)'}. Key: "
                f"{_lower_first(cls.key_schema()['description'])} "
                "With VOICETICKET_KAFKA_TOPIC_NAMESPACE set, the topic is `<namespace>.` + this address."
            ),
            "messages": {cls.schema_name(): _ref("components", "messages", cls.schema_name())},
            "bindings": {"kafka": {"topic": cls.topic(), "bindingVersion": KAFKA_BINDING_VERSION}},
        }
        for cls in classes
    }
    return {
        "asyncapi": ASYNCAPI_VERSION,
        "info": {
            "title": "Voice to Ticket events",
            "version": "1",
            "description": (
                "Every step of a call publishes one schema-versioned event on Kafka (or the embedded "
                "bus). Generated from the pydantic models in libs/common/src/voiceticket_common/events/ "
                "and the services' routes; do not edit (`make schemas`). See docs/events.md."
            ),
            "license": {"name": "Apache-2.0", "url": "https://www.apache.org/licenses/LICENSE-2.0"},
        },
        "defaultContentType": wire.CONTENT_TYPE,
        "servers": {
            "kafka": {
                "host": "kafka:9092",
                "protocol": "kafka",
                "description": "The deployment's cluster (VOICETICKET_KAFKA_BOOTSTRAP_SERVERS).",
            }
        },
        "channels": channels,
        "operations": _operations(participants),
        "components": {
            "messages": {cls.schema_name(): _message(cls) for cls in classes},
            "schemas": {"CloudEventsHeaders": _cloudevents_headers(), **_component_schemas(classes)},
        },
    }


def render_document(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def document_path(directory: Path | None = None) -> Path:
    return (directory or repo_schema_dir()) / DOCUMENT_NAME


def check(path: Path, participants: Sequence[Participant]) -> list[str]:
    """Problems between the code and the committed document; empty when they agree."""
    if not path.exists():
        return [f"{path.name}: not committed (run `make schemas`)"]
    if path.read_text() != render_document(document(participants)):
        return [f"{path.name}: differs from the models and routes (run `make schemas`)"]
    return []


def main(argv: list[str]) -> int:
    path = document_path()
    participants = services()
    if argv[:1] == ["write"]:
        path.write_text(render_document(document(participants)))
        print(path.relative_to(path.parent.parent))
        return 0
    problems = check(path, participants)
    print("\n".join(problems) or "asyncapi document up to date")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
