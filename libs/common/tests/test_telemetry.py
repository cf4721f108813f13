"""Traces, metrics and logs of one call, in process: span structure across the bus, call ids on
every span and log line, retries and dead letters on spans and in metrics, and nothing personal or
secret in any of them. The multi-process variant is tests/integration/test_call_trace.py."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence

import httpx
import pytest
from fastapi import FastAPI, Request, Response
from fastapi.testclient import TestClient
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from prometheus_client import REGISTRY, generate_latest

from voiceticket_common import metrics
from voiceticket_common.bus import PermanentError, RetryPolicy, TransientError
from voiceticket_common.bus.embedded import EmbeddedEventBus
from voiceticket_common.bus.progress import ConsumerProgress
from voiceticket_common.events import Event, NotificationSent, TicketCreated
from voiceticket_common.http import AllowListTransport, raise_for_provider_status, url_template
from voiceticket_common.httpserver import NO_NATIVE_TELEMETRY, add_server_spans
from voiceticket_common.logging import NOISY_LOGGERS, JsonFormatter
from voiceticket_common.metrics import PriceSettings, add_metrics_route
from voiceticket_common.service import health_app
from voiceticket_common.testing import ticket_created
from voiceticket_common.tracing import CALL_SID_ATTR, TENANT_ATTR, setup_tracing, start_span, tag_issue_key

CALL_SID = "CA" + "7e" * 16
CALLER = "+14155550142"
TRANSCRIPT_PHRASE = "the blue invoice portal swallowed my refund"
SECRET = "sk-planted-secret-" + "q" * 16
GROUP = "voiceticket-telemetry-test"
FAST = RetryPolicy(max_attempts=3, initial_backoff=0.01, max_backoff=0.02, max_total_seconds=5)

_exporter = InMemorySpanExporter()


@pytest.fixture(scope="module", autouse=True)
def _tracing() -> Iterator[None]:
    # The global provider can be installed once per process; every test here shares this
    # exporter, which stops keeping spans once the module is done.
    setup_tracing("telemetry-test").add_span_processor(SimpleSpanProcessor(_exporter))
    yield
    _exporter.shutdown()


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    _exporter.clear()
    yield _exporter
    _exporter.clear()


@pytest.fixture
def log_lines() -> Iterator[Callable[[], list[dict]]]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter("telemetry-test"))
    root = logging.getLogger()
    root.addHandler(handler)
    levels = {name: logging.getLogger(name).level for name in ("", *NOISY_LOGGERS)}
    root.setLevel(logging.INFO)
    for name in NOISY_LOGGERS:  # as setup_logging leaves them in the services
        logging.getLogger(name).setLevel(logging.WARNING)
    try:
        yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    finally:
        root.removeHandler(handler)
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


def ticket() -> TicketCreated:
    return ticket_created(
        call_sid=CALL_SID,
        caller_number=CALLER,
        issue_key="HELP-7",
        issue_id="10007",
        summary="Refund missing",
    )


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def jira_transport(status: int = 201) -> AllowListTransport:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, json={"issueKey": "HELP-7", "issueId": "10007"})

    return AllowListTransport(["jira.test"], "jira", inner=httpx.MockTransport(answer))


@contextlib.asynccontextmanager
async def consuming(tmp_path, handler, policy: RetryPolicy = FAST) -> AsyncIterator[EmbeddedEventBus]:  # type: ignore[no-untyped-def]
    bus = EmbeddedEventBus(tmp_path / "bus.db", source="telemetry-test", poll_interval=0.02)
    await bus.start()
    task = asyncio.create_task(bus.consume(GROUP, [TicketCreated], handler, policy))
    try:
        yield bus
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await bus.stop()


async def finished(exporter: InMemorySpanExporter, name_prefix: str, timeout: float = 5.0) -> ReadableSpan:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for span in exporter.get_finished_spans():
            if span.name.startswith(name_prefix):
                return span
        await asyncio.sleep(0.02)
    raise AssertionError(f"no span {name_prefix!r}; got {[s.name for s in exporter.get_finished_spans()]}")


async def publish_from_webhook(bus: EmbeddedEventBus, event: Event) -> None:
    """What ingress does: a SERVER span, and the event published inside it."""

    with start_span("POST /twilio/recording", SpanKind.SERVER):
        await bus.publish(event)


# -- one trace across the bus ------------------------------------------------------------------
async def test_process_span_parents_the_provider_calls_and_the_events_it_publishes(
    tmp_path, spans: InMemorySpanExporter, log_lines: Callable[[], list[dict]]
) -> None:
    async def notify(event: Event) -> Sequence[Event]:
        async with httpx.AsyncClient(transport=jira_transport()) as client:
            await client.post("https://jira.test/rest/servicedeskapi/request/HELP-7/comment", json={})
        tag_issue_key("HELP-7")
        logging.getLogger("test.handler").info("sms sent")
        return [NotificationSent(tenant_id="acme", call_sid=CALL_SID, issue_key="HELP-7", message_sid="SM1")]

    async with consuming(tmp_path, notify) as bus:
        await publish_from_webhook(bus, ticket())
        process = await finished(spans, "process voiceticket.ticket.created.v1")

    by_name = {s.name: s for s in spans.get_finished_spans()}
    webhook = by_name["POST /twilio/recording"]
    send_in = by_name["send voiceticket.ticket.created.v1"]
    client = by_name["POST /rest/servicedeskapi/request/{issueKey}/comment"]
    send_out = by_name["send voiceticket.notification.sent.v1"]

    assert {s.context.trace_id for s in (webhook, send_in, process, client, send_out)} == {
        webhook.context.trace_id
    }, "one trace"
    assert send_in.parent.span_id == webhook.context.span_id
    assert process.parent.span_id == send_in.context.span_id, "process is a child of the producer span"
    assert client.parent.span_id == process.context.span_id
    assert send_out.parent.span_id == process.context.span_id, "outcome events are sent inside process"
    assert process.kind is SpanKind.CONSUMER and client.kind is SpanKind.CLIENT
    assert process.attributes["voiceticket.issue_key"] == "HELP-7"
    assert client.attributes["url.template"] == "/rest/servicedeskapi/request/{issueKey}/comment"
    for span in (send_in, process, client, send_out):
        assert span.attributes[CALL_SID_ATTR] == CALL_SID, span.name
        assert span.attributes[TENANT_ATTR] == "acme", span.name

    [line] = [line for line in log_lines() if line["msg"] == "sms sent"]
    assert line["trace_id"] == format(process.context.trace_id, "032x")
    assert line["span_id"] == format(process.context.span_id, "016x")
    assert line["call_sid"] == CALL_SID and line["tenant_id"] == "acme"


async def test_the_chain_start_rides_in_baggage_and_gives_call_to_ticket_latency(
    tmp_path, spans: InMemorySpanExporter
) -> None:
    before = sample("voiceticket_call_to_ticket_seconds_count", tenant="acme")
    started = time.time()

    async def write(event: Event) -> Sequence[Event]:
        at = metrics.pipeline_started_at()  # the handler runs in the context the headers carried
        assert at is not None and started - 1 <= at <= time.time()
        metrics.observe_call_to_ticket("acme")
        return [NotificationSent(tenant_id="acme", call_sid=CALL_SID, issue_key="HELP-7", message_sid="SM1")]

    async with consuming(tmp_path, write) as bus:
        await publish_from_webhook(bus, ticket())
        await finished(spans, "process ")
        await finished(spans, "send voiceticket.notification.sent.v1")
        rows: list = []
        for _ in range(100):
            query = "SELECT headers FROM bus_records WHERE topic LIKE '%notification.sent%'"
            if rows := list(await (await bus.db.execute(query)).fetchall()):
                break
            await asyncio.sleep(0.02)
        [(raw,)] = rows
    assert sample("voiceticket_call_to_ticket_seconds_count", tenant="acme") == before + 1
    assert "voiceticket.t0=" in raw, "the start travels on with the outcome event"


# -- retries and errors ------------------------------------------------------------------------
async def test_a_retry_is_an_event_on_the_process_span_and_a_failure_metric(
    tmp_path, spans: InMemorySpanExporter
) -> None:
    attempts = 0
    failures = sample(
        "voiceticket_handler_failures_total", group=GROUP, error_type="TransientError", retrying="true"
    )
    processed = sample("voiceticket_handler_messages_total", group=GROUP, outcome="processed")

    async def flaky(event: Event) -> Sequence[Event]:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            raise TransientError(f"jira busy for {CALLER}")
        return []

    async with consuming(tmp_path, flaky) as bus:
        await publish_from_webhook(bus, ticket())
        process = await finished(spans, "process ")

    [event] = [e for e in process.events if e.name == "exception"]
    assert event.attributes == {"exception.type": "TransientError", "voiceticket.retrying": True}
    assert process.attributes["voiceticket.retries"] == 1
    assert process.status.status_code is not StatusCode.ERROR, "it succeeded in the end"
    assert (
        sample(
            "voiceticket_handler_failures_total", group=GROUP, error_type="TransientError", retrying="true"
        )
        == failures + 1
    )
    assert sample("voiceticket_handler_messages_total", group=GROUP, outcome="processed") == processed + 1
    assert sample("voiceticket_handler_duration_seconds_count", group=GROUP, outcome="processed") >= 1


async def test_a_dead_letter_marks_the_span_and_counts(tmp_path, spans: InMemorySpanExporter) -> None:
    dead = sample("voiceticket_dead_letters_total", group=GROUP, error_type="PermanentError")
    outcome = sample("voiceticket_handler_messages_total", group=GROUP, outcome="dead_lettered")

    async def refuse(event: Event) -> Sequence[Event]:
        raise PermanentError("jira said no")

    async with consuming(tmp_path, refuse) as bus:
        await publish_from_webhook(bus, ticket())
        process = await finished(spans, "process ")
        for _ in range(100):
            if await bus.dead_letters(GROUP):
                break
            await asyncio.sleep(0.02)

    assert process.status.status_code is StatusCode.ERROR
    assert [e.name for e in process.events] == ["exception", "voiceticket.dead_lettered"]
    assert process.events[1].attributes == {"error.type": "PermanentError"}
    assert sample("voiceticket_dead_letters_total", group=GROUP, error_type="PermanentError") == dead + 1
    assert sample("voiceticket_handler_messages_total", group=GROUP, outcome="dead_lettered") == outcome + 1


def test_consumer_figures_are_read_from_the_consumer_at_each_scrape() -> None:
    figures = {"lag": 17}

    def progress() -> ConsumerProgress:
        lags = {("voiceticket.call.analyzed.v1", 2): figures["lag"]}
        return ConsumerProgress(True, 1, 3, 0, None, None, partition_lags=lags)

    def lag() -> float | None:
        labels = {"group": GROUP, "topic": "voiceticket.call.analyzed.v1", "partition": "2"}
        return REGISTRY.get_sample_value("voiceticket_consumer_lag", labels)

    with metrics.consumer_tracked(GROUP, progress):
        assert lag() == 17
        assert sample("voiceticket_consumer_in_flight", group=GROUP) == 3
        figures["lag"] = -4  # an end not refreshed yet: never a negative lag
        assert lag() == 0
    assert lag() is None
    assert REGISTRY.get_sample_value("voiceticket_consumer_in_flight", {"group": GROUP}) is None


def test_a_consumer_whose_figures_fail_does_not_fail_the_scrape() -> None:
    def broken() -> ConsumerProgress:
        raise RuntimeError("consumer closed")

    with metrics.consumer_tracked("broken-group", broken):
        assert b"voiceticket_consumer_lag" in generate_latest(REGISTRY)


# -- providers -----------------------------------------------------------------------------------
async def test_provider_calls_are_counted_and_timed_by_status_class(spans: InMemorySpanExporter) -> None:
    before = sample(
        "voiceticket_provider_requests_total", provider="jira", status_class="4xx_auth", tenant="unknown"
    )
    async with httpx.AsyncClient(transport=jira_transport(status=401)) as client:
        response = await client.post("https://jira.test/rest/servicedeskapi/request", json={})
    assert sample(
        "voiceticket_provider_requests_total", provider="jira", status_class="4xx_auth", tenant="unknown"
    ) == (before + 1)
    assert (
        sample(
            "voiceticket_provider_request_duration_seconds_count", provider="jira", status_class="4xx_auth"
        )
        >= 1
    )
    [span] = spans.get_finished_spans()
    assert span.name == "POST /rest/servicedeskapi/request"
    assert span.status.status_code is StatusCode.ERROR and span.attributes["error.type"] == "401"
    with pytest.raises(PermanentError):
        raise_for_provider_status(response, "jira", "create request")


@pytest.mark.parametrize(
    ("path", "template"),
    [
        ("/2010-04-01/Accounts/AC" + "0a" * 16 + "/Recordings/RE" + "1b" * 16 + ".wav",
         "/2010-04-01/Accounts/{sid}/Recordings/{sid}.wav"),
        ("/2010-04-01/Accounts/AC" + "0a" * 16 + "/Messages.json", "/2010-04-01/Accounts/{sid}/Messages.json"),
        ("/v1/audio/transcriptions", "/v1/audio/transcriptions"),
        ("/rest/api/3/issue/HELP-12/properties/voiceticket.call",
         "/rest/api/3/issue/{issueKey}/properties/voiceticket.call"),
        ("/rest/api/3/issue/10023", "/rest/api/3/issue/{id}"),
        ("/lookup/+14155550142/x", "/lookup/{id}/x"),
        ("/users/dana@example.com", "/users/{id}"),
    ],
)  # fmt: skip
def test_url_templates_keep_ids_and_numbers_out_of_span_names(path: str, template: str) -> None:
    assert url_template(path) == template


# -- usage and cost ------------------------------------------------------------------------------
def test_tokens_audio_and_estimated_cost_per_tenant() -> None:
    cost = sample("voiceticket_estimated_cost_usd_total", tenant="cost-test", model="gpt-4o-mini")
    metrics.record_llm_usage("cost-test", "gpt-4o-mini", prompt_tokens=1000, completion_tokens=500)
    assert (
        sample("voiceticket_openai_tokens_total", tenant="cost-test", model="gpt-4o-mini", kind="prompt")
        >= 1000
    )
    assert sample(
        "voiceticket_estimated_cost_usd_total", tenant="cost-test", model="gpt-4o-mini"
    ) == pytest.approx(cost + (1000 * 0.15 + 500 * 0.60) / 1e6)
    metrics.record_transcription("cost-test", "gpt-4o-mini-transcribe", audio_seconds=120)
    assert (
        sample("voiceticket_audio_seconds_total", tenant="cost-test", model="gpt-4o-mini-transcribe") >= 120
    )
    assert sample(
        "voiceticket_estimated_cost_usd_total", tenant="cost-test", model="gpt-4o-mini-transcribe"
    ) == pytest.approx(0.006)


def test_the_price_table_is_overridden_per_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOICETICKET_PRICE_TABLE", json.dumps({"gpt-4o-mini": {"input_per_million": 1.0}}))
    prices = PriceSettings().prices()
    assert prices["gpt-4o-mini"].input_per_million == 1.0 and prices["gpt-4o-mini"].output_per_million == 0
    assert prices["whisper-1"].per_audio_minute > 0, "models not overridden keep their defaults"


# -- webhooks ------------------------------------------------------------------------------------
def webhook_app() -> FastAPI:
    app = FastAPI(telemetry=NO_NATIVE_TELEMETRY)

    @app.post("/twilio/voice")
    async def voice(request: Request) -> Response:
        form = await request.form()
        logging.getLogger("test.webhook").info("call answered")
        async with httpx.AsyncClient(transport=jira_transport()) as client:
            # A badly built URL: the number in the path and the query must not reach the span.
            await client.get(f"https://jira.test/lookup/{form['From']}", params={"q": TRANSCRIPT_PHRASE})
        if form.get("Body") == "boom":
            raise RuntimeError(f"cannot handle {form['From']} saying {TRANSCRIPT_PHRASE} with {SECRET}")
        return Response("<Response/>", media_type="application/xml")

    add_server_spans(app, trace_query_param="tp", call_sid_field="CallSid")
    add_metrics_route(app)
    return app


def test_webhook_spans_and_red_metrics_use_the_route_template(
    spans: InMemorySpanExporter, log_lines: Callable[[], list[dict]]
) -> None:
    ok = sample("voiceticket_http_requests_total", route="/twilio/voice", method="POST", status_class="2xx")
    with TestClient(webhook_app()) as client:
        response = client.post(
            "/twilio/voice?tp=00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            data={"CallSid": CALL_SID, "From": CALLER},
        )
        assert response.status_code == 200
        assert client.get("/wp-login.php").status_code == 404
        exposed = client.get("/metrics")
    assert sample(
        "voiceticket_http_requests_total", route="/twilio/voice", method="POST", status_class="2xx"
    ) == (ok + 1)
    assert sample("voiceticket_http_requests_total", route="unmatched", method="GET", status_class="4xx") >= 1
    assert "voiceticket_http_request_duration_seconds_bucket" in exposed.text
    server = next(s for s in spans.get_finished_spans() if s.kind is SpanKind.SERVER)
    assert server.name == "POST /twilio/voice" and server.attributes["http.route"] == "/twilio/voice"
    assert format(server.context.trace_id, "032x") == "0af7651916cd43dd8448eb211c80319c", "continues tp"
    assert server.attributes[CALL_SID_ATTR] == CALL_SID, "read from the form, whatever the route"
    client_span = next(s for s in spans.get_finished_spans() if s.kind is SpanKind.CLIENT)
    assert client_span.attributes[CALL_SID_ATTR] == CALL_SID, "children inherit the call"
    [line] = [line for line in log_lines() if line["msg"] == "call answered"]
    assert line["call_sid"] == CALL_SID and line["trace_id"] == "0af7651916cd43dd8448eb211c80319c"


def test_consumers_expose_metrics_on_the_health_port() -> None:
    with TestClient(health_app(asyncio.Event())) as client:
        response = client.get("/metrics")
    assert response.status_code == 200
    assert "voiceticket_handler_messages_total" in response.text


# -- privacy -------------------------------------------------------------------------------------
def everything_exported(spans: Sequence[ReadableSpan]) -> str:
    parts: list[str] = []
    for span in spans:
        parts += [span.name, json.dumps(dict(span.attributes or {}), default=str)]
        parts += [json.dumps(dict(span.resource.attributes), default=str)]
        if span.status.description:
            parts.append(span.status.description)
        for event in span.events:
            parts += [event.name, json.dumps(dict(event.attributes or {}), default=str)]
    return "\n".join(parts)


def test_no_number_transcript_or_secret_in_spans_logs_or_metrics(
    spans: InMemorySpanExporter, log_lines: Callable[[], list[dict]]
) -> None:
    with TestClient(webhook_app(), raise_server_exceptions=False) as client:
        response = client.post("/twilio/voice", data={"CallSid": CALL_SID, "From": CALLER, "Body": "boom"})
    assert response.status_code == 500
    exported = everything_exported(spans.get_finished_spans())
    assert "RuntimeError" in exported, "the failure is recorded, by type"
    logs = json.dumps(log_lines())
    scraped = generate_latest(REGISTRY).decode()
    for planted in (CALLER, CALLER.lstrip("+"), TRANSCRIPT_PHRASE, SECRET, CALL_SID):
        if planted != CALL_SID:  # the CallSid is the correlation key in spans and logs
            assert planted not in exported, f"span leaks {planted!r}"
            assert planted not in logs, f"log leaks {planted!r}"
        assert planted not in scraped, f"metrics leak {planted!r}"
