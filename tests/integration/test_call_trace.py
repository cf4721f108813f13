"""One call, one trace: the spans the six processes really export over OTLP/HTTP, received by a
small OTLP receiver inside the test, form one trace with the expected structure; no span, log
line or metric holds the caller's number, the transcript or a secret; and every service's metrics
endpoint shows the call.

The stack here is its own (the module-scoped ``stack`` fixture exports nothing) and keeps its
state in SQLite files, so it shares nothing but the Kafka broker with other tests.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from otlp_receiver import OtlpReceiver, ReceivedSpan
from prometheus_client.parser import text_string_to_metric_families

from voiceticket_ingress.settings import IngressSettings
from voiceticket_sandbox.caller import CallerSimulator, PlayedCall, make_tone_wav
from voiceticket_sandbox.devstack import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    JIRA_TOKEN,
    OPENAI_KEY,
    SMS_FROM,
    SUPPORT_LINE,
    Stack,
)

CALLER = "+14155550199"
TRANSCRIPT = (
    "Hi, this is Priya Natarajan from Fabrikam. The billing portal rejects my invoice upload with "
    "an error since yesterday, please help. My account number is 99120456."
)
PHRASE = "billing portal rejects my invoice upload"
AUDIO = make_tone_wav(seconds=1.3, frequency=587.0)  # the OpenAI stand-in keys transcripts by audio
MESSAGE_PATH = ("ingress", "transcriber", "analyzer", "jira-writer", "notifier")


@dataclass
class TracedCall:
    stack: Stack
    played: PlayedCall
    issue_key: str
    trace_id: str
    spans: list[ReceivedSpan]
    all_spans: list[ReceivedSpan]

    def topic(self, event_type: str) -> str:
        return self.stack.topic(f"voiceticket.{event_type}.v1")

    def one(self, name: str, service: str, parent: ReceivedSpan | None = None) -> ReceivedSpan:
        found = [s for s in self.spans if s.name == name and s.service == service]
        assert len(found) == 1, f"expected one {name!r} from {service}, got {len(found)}:\n{self.outline()}"
        if parent is not None:
            assert found[0].parent_span_id == parent.span_id, (
                f"{name!r} should be a child of {parent.name!r}:\n{self.outline()}"
            )
        return found[0]

    def outline(self) -> str:
        return "\n".join(
            f"{s.service:12} {s.kind:9} {s.name}  ({s.span_id} <- {s.parent_span_id or 'root'})"
            for s in self.spans
        )


def wait_for(predicate, timeout: float = 45.0, interval: float = 0.3):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(interval)
    return predicate()


@pytest.fixture(scope="module")
def traced(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TracedCall]:
    with OtlpReceiver() as otlp:
        stack = Stack(
            tmp_path_factory.mktemp("traced-stack"),
            kafka_bootstrap,
            extra_env={"OTEL_EXPORTER_OTLP_ENDPOINT": otlp.endpoint, "OTEL_BSP_SCHEDULE_DELAY": "200"},
        )
        try:
            stack.start()
            caller = CallerSimulator(stack.ingress_url, ACCOUNT_SID, AUTH_TOKEN, stack.sandbox.twilio)
            played = asyncio.run(caller.play_call(CALLER, SUPPORT_LINE, AUDIO, TRANSCRIPT))
            assert played.voice_status == 200 and played.recording_status == 204

            def ticket_and_sms() -> str | None:
                issues = [i for i in stack.issues() if played.call_sid in str(i)]
                sms = [r for r in stack.sms_sent() if r["body"]["To"] == CALLER]
                return issues[0]["key"] if issues and issues[0]["comments"] and sms else None

            issue_key = wait_for(ticket_and_sms)
            assert issue_key, "no ticket and SMS in time:\n" + "\n".join(
                f"--- {name}\n{text[-2000:]}" for name, text in stack.logs().items()
            )

            def whole_trace() -> list[ReceivedSpan] | None:
                received = otlp.snapshot()
                roots = [
                    s
                    for s in received
                    if s.name == "POST /twilio/voice"
                    and s.attributes.get("voiceticket.call_sid") == played.call_sid
                ]
                if not roots:
                    return None
                trace = [s for s in received if s.trace_id == roots[0].trace_id]
                last = f"send {stack.topic('voiceticket.notification.sent.v1')}"
                return trace if any(s.name == last for s in trace) else None

            spans = wait_for(whole_trace, timeout=20)
            assert spans, "the notifier's last span never arrived; received:\n" + "\n".join(
                f"{s.service} {s.name}" for s in otlp.snapshot()
            )
            time.sleep(1)  # a straggler (the ingress record-done span) may still be in a batch
            all_spans = otlp.snapshot()
            trace_id = spans[0].trace_id
            yield TracedCall(
                stack,
                played,
                issue_key,
                trace_id,
                [s for s in all_spans if s.trace_id == trace_id],
                all_spans,
            )
        finally:
            stack.stop()


def test_the_whole_call_is_one_trace_with_the_expected_structure(traced: TracedCall) -> None:
    t = traced
    call_sid = t.played.call_sid

    # Twilio's webhooks: the incoming call starts the trace, the signed callbacks continue it.
    voice = t.one("POST /twilio/voice", "ingress")
    assert voice.kind == "SERVER" and voice.parent_span_id == "", "the incoming call is the root"
    recording = t.one("POST /twilio/recording", "ingress", parent=voice)
    assert recording.kind == "SERVER" and recording.attributes["http.response.status_code"] == 204
    done = t.one("POST /twilio/record-done", "ingress", parent=voice)
    assert done.kind == "SERVER"
    t.one(f"send {t.topic('call.received')}", "ingress", parent=voice)

    # send/process pairs, each process the parent of its provider calls and of what it publishes.
    recording_sent = t.one(f"send {t.topic('call.recording.completed')}", "ingress", parent=recording)
    chain = [
        ("call.recording.completed", "transcriber",
         ["GET /2010-04-01/Accounts/{sid}/Recordings/{sid}.wav", "POST /v1/audio/transcriptions"],
         "call.transcribed"),
        ("call.transcribed", "analyzer", ["POST /v1/chat/completions"], "call.analyzed"),
        ("call.analyzed", "jira-writer",
         ["POST /rest/servicedeskapi/request", "PUT /rest/api/3/issue/{issueKey}/properties/voiceticket.call",
          "POST /rest/servicedeskapi/request/{issueKey}/comment"],
         "ticket.created"),
        ("ticket.created", "notifier", ["POST /2010-04-01/Accounts/{sid}/Messages.json"], "notification.sent"),
    ]  # fmt: skip
    sent = recording_sent
    for consumed, service, calls, produced in chain:
        process = t.one(f"process {t.topic(consumed)}", service, parent=sent)
        assert process.kind == "CONSUMER" and sent.kind == "PRODUCER"
        assert process.attributes["messaging.system"] == "kafka"
        assert process.attributes["messaging.destination.name"] == t.topic(consumed)
        assert process.attributes["messaging.consumer.group.name"] == f"voiceticket-{service}"
        assert process.attributes["messaging.message.id"] == sent.attributes["messaging.message.id"]
        for name in calls:
            client = t.one(name, service, parent=process)
            assert client.kind == "CLIENT" and client.attributes["http.response.status_code"] < 400
        sent = t.one(f"send {t.topic(produced)}", service, parent=process)

    jira = t.one(f"process {t.topic('call.analyzed')}", "jira-writer")
    assert jira.attributes["voiceticket.issue_key"] == t.issue_key, "a request key finds the trace"
    analyzer = t.one(f"process {t.topic('call.transcribed')}", "analyzer")
    assert analyzer.attributes["gen_ai.usage.input_tokens"] > 0

    assert {s.service for s in t.spans} >= set(MESSAGE_PATH)
    for span in t.spans:
        assert span.attributes.get("voiceticket.call_sid") == call_sid, f"{span.service} {span.name}"
        assert span.attributes.get("voiceticket.tenant_id", "acme") == "acme"
    elsewhere = [s for s in t.all_spans if s.attributes.get("voiceticket.call_sid") == call_sid]
    assert {s.trace_id for s in elsewhere} == {t.trace_id}, "one call, one trace"
    assert not [s for s in t.spans if s.status == "ERROR"], t.outline()


def planted(t: TracedCall) -> dict[str, str]:
    """What must never leave a process in telemetry: the caller, the transcript, every secret."""

    sealed = parse_qs(urlsplit(t.played.recording_callback_url or "").query)["ctx"][0]
    context_key = IngressSettings.model_fields["callback_context_key"].default.get_secret_value()
    return {
        "caller's number": CALLER,
        "caller's digits": CALLER.lstrip("+"),
        "transcript": PHRASE,
        "Twilio auth token": AUTH_TOKEN,
        "Jira API token": JIRA_TOKEN,
        "OpenAI key": OPENAI_KEY,
        "callback context key": context_key,
        "sealed call context": sealed,
        "config-api admin token": t.stack.admin_token,
        **{f"{role} config token": token for role, token in t.stack.service_tokens.items()},
    }


def test_no_span_holds_a_number_the_transcript_or_a_secret(traced: TracedCall) -> None:
    exported = "\n".join(s.text() for s in traced.all_spans)
    assert traced.played.call_sid in exported, "the search covers what was exported"
    for what, value in {**planted(traced), "support line": SUPPORT_LINE, "SMS sender": SMS_FROM}.items():
        assert value not in exported, f"an exported span holds the {what}"


def test_every_log_line_is_json_with_the_call_and_no_personal_data(traced: TracedCall) -> None:
    logs = traced.stack.logs()
    for name, text in logs.items():
        for what, value in planted(traced).items():
            assert value not in text, f"{name} logged the {what}"
    for service in MESSAGE_PATH:
        lines = [json.loads(line) for line in logs[service].splitlines() if line.startswith("{")]
        about_call = [line for line in lines if line.get("call_sid") == traced.played.call_sid]
        assert about_call, f"{service} logged nothing with the call id"
        assert {line.get("trace_id") for line in about_call} == {traced.trace_id}, service
        assert all(len(line.get("span_id", "")) == 16 for line in about_call), service


def scrape(url: str) -> dict[tuple[str, frozenset], float]:
    text = httpx.get(url, timeout=5).text
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: dict[tuple[str, frozenset], float], name: str, **labels: str) -> float:
    return sum(v for (n, ls), v in samples.items() if n == name and set(labels.items()) <= ls)


def test_every_service_exposes_the_call_in_its_metrics(traced: TracedCall) -> None:
    stack = traced.stack
    urls = {"ingress": f"{stack.ingress_url}/metrics", "config-api": f"{stack.config_api_url}/metrics"} | {
        name: str(stack.processes[name].ready_url).replace("/readyz", "/metrics") for name in MESSAGE_PATH[1:]
    }
    scraped = {name: scrape(url) for name, url in urls.items()}
    ingress = scraped["ingress"]
    assert value(ingress, "voiceticket_http_requests_total", route="/twilio/voice", status_class="2xx") >= 1
    assert value(ingress, "voiceticket_http_request_duration_seconds_count", route="/twilio/recording") >= 1
    lookups = value(
        scraped["config-api"], "voiceticket_http_requests_total", route="/v1/runtime/lines/{number}"
    )
    assert lookups >= 1, "config-api labels its routes by template: the path holds the line's number"
    for service in MESSAGE_PATH[1:]:
        group = f"voiceticket-{service}"
        samples = scraped[service]
        assert value(samples, "voiceticket_handler_messages_total", group=group, outcome="processed") >= 1
        assert value(samples, "voiceticket_handler_duration_seconds_count", group=group) >= 1
        assert any(n == "voiceticket_consumer_lag" and ("group", group) in ls for n, ls in samples), service
    transcriber, analyzer = scraped["transcriber"], scraped["analyzer"]
    assert value(transcriber, "voiceticket_provider_requests_total", provider="twilio", tenant="acme") >= 1
    assert value(transcriber, "voiceticket_audio_seconds_total", tenant="acme") >= 12
    assert value(analyzer, "voiceticket_openai_tokens_total", tenant="acme", kind="prompt") > 0
    assert value(analyzer, "voiceticket_estimated_cost_usd_total", tenant="acme") > 0
    jira_writer = scraped["jira-writer"]
    assert value(jira_writer, "voiceticket_call_to_ticket_seconds_count", tenant="acme") >= 1
    assert 0 < value(jira_writer, "voiceticket_call_to_ticket_seconds_sum", tenant="acme") < 60, (
        "measured from the recording callback, not from some earlier or later point"
    )
    assert (
        value(
            scraped["notifier"], "voiceticket_provider_requests_total", provider="twilio", status_class="2xx"
        )
        >= 1
    )

    every_label = "\n".join(repr(sorted(ls)) for samples in scraped.values() for (_, ls) in samples)
    never = {**planted(traced), "CallSid": traced.played.call_sid, "issue key": traced.issue_key}
    for what, value_ in {**never, "support line": SUPPORT_LINE}.items():
        assert value_ not in every_label, f"a metric label holds the {what}"
