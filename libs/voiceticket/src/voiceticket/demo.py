"""``voiceticket demo``: a bundled sample call becomes a ticket, on the embedded runtime.

Everything runs in this process on loopback: the provider sandboxes (Twilio, OpenAI and Jira
stand-ins that validate each request against the official OpenAPI specs), config-api with a demo
tenant, ingress and the four consumers over the embedded bus. A caller simulator plays the call
with signed webhooks, exactly as Twilio would.

Speech-to-text is real by default: the demo tenant's ``transcription_backend`` is ``local``, so the
transcriber's Whisper engine recognises the sample's audio (the OpenAI stand-in's key serves the
analysis only, and the stand-in does no recognition). The result shows what was recognised next to
the sample's reference text, with the word error rate. ``stand_in`` speech-to-text asks the OpenAI
stand-in instead, which answers with the reference transcript (what the exact-transcript tests use).
The packaged model, ``tiny.en``, knows only English: a sample in another language goes to the
stand-in unless ``VOICETICKET_LOCAL_STT_MODEL_DIR`` names a (multilingual) model.

The sandboxes come with the ``sandbox`` extra (``voiceticket[sandbox]``), which the runtime image
leaves out, so they are imported inside the functions, never when this module is imported.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import httpx

from voiceticket_common.events import CallTranscribed, Event

from .embedded import EmbeddedOptions, EmbeddedRuntime
from .samples import SampleCall

STEPS = {
    "call.received": "call answered (greeting, recording notice, <Record>)",
    "call.recording.completed": "recording completed",
    "call.transcribed": "transcribed",
    "call.analyzed": "analysed",
    "ticket.created": "JSM request created",
    "notification.sent": "SMS sent",
    "notification.failed": "SMS not sent",
    "notification.delivery": "SMS delivery receipt",  # Twilio's StatusCallback, through ingress
    "call.completed": "call ended",
}


SpeechToText = Literal["local", "stand_in"]


class DemoFailed(RuntimeError):
    pass


@dataclass(frozen=True)
class Recognition:
    """What speech-to-text made of the sample, beside what the sample says."""

    engine: str
    """``local`` (recognised here) or ``stand_in`` (the reference transcript, looked up)."""
    model: str
    recognised: str
    reference: str
    word_error_rate: float
    detected_language: str | None = None
    note: str = ""


@dataclass
class DemoResult:
    call_sid: str
    issue: dict[str, Any]
    sms: list[dict[str, Any]]
    timeline: list[tuple[str, float]] = field(default_factory=list)
    invalid_requests: list[dict[str, Any]] = field(default_factory=list)
    recognition: Recognition | None = None


def _step(topic: str) -> str:
    name = topic.removeprefix("voiceticket.").rsplit(".v", 1)[0]
    return STEPS.get(name, name)


def speech_to_text_for(sample: SampleCall, wanted: SpeechToText) -> tuple[SpeechToText, str]:
    """The engine the demo uses for ``sample``, and why when it is not the one wanted."""

    if (
        wanted == "local"
        and sample.language != "en"
        and not os.environ.get("VOICETICKET_LOCAL_STT_MODEL_DIR")
    ):
        return "stand_in", (
            f"the packaged local model (tiny.en) knows only English; this sample is '{sample.language}', "
            "so the OpenAI stand-in's reference transcript stands in. Set VOICETICKET_LOCAL_STT_MODEL_DIR "
            "to a multilingual CTranslate2 Whisper model to recognise it."
        )
    return wanted, ""


def demo_seed(twilio: str, openai: str, jira: str, speech_to_text: SpeechToText) -> dict[str, Any]:
    """The demo tenant; with ``local``, its speech-to-text is the transcriber's own engine."""

    from voiceticket_sandbox.demo_tenant import seed

    tenants = seed(twilio, openai, jira)
    if speech_to_text == "local":
        for tenant in tenants["tenants"]:
            tenant["transcription_backend"] = "local"
    return tenants


async def run_demo(
    sample: SampleCall,
    data_dir: Path,
    progress: Callable[[str], None],
    deadline_s: float = 90.0,
    speech_to_text: SpeechToText = "local",
) -> DemoResult:
    from voiceticket_sandbox import run_sandboxes
    from voiceticket_sandbox.caller import CallerSimulator
    from voiceticket_sandbox.demo_tenant import (
        ACCOUNT_SID,
        AUTH_TOKEN,
        SUPPORT_LINE,
        configure_sandboxes,
    )
    from voiceticket_transcriber.wer import word_error_rate

    engine, note = speech_to_text_for(sample, speech_to_text)
    data_dir.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 - once, before anything runs
    seed_file = data_dir / "demo-seed.json"
    async with run_sandboxes() as urls:
        await configure_sandboxes(urls.twilio, urls.openai, urls.jira)
        seed = demo_seed(urls.twilio, urls.openai, urls.jira, engine)
        seed_file.write_text(json.dumps(seed))  # noqa: ASYNC240
        progress("sandboxes and embedded services starting")
        options = EmbeddedOptions.against_sandboxes(data_dir, urls.twilio, seed_file)
        async with EmbeddedRuntime(options) as runtime, _transcripts(runtime) as transcripts:
            simulator = CallerSimulator(runtime.ingress_url, ACCOUNT_SID, AUTH_TOKEN, urls.twilio)
            started = time.monotonic()
            played = await simulator.play_call(
                sample.caller, SUPPORT_LINE, sample.audio, sample.transcript, sample.duration_seconds
            )
            if played.voice_status != 200:
                raise DemoFailed(f"ingress answered the call with HTTP {played.voice_status}")
            seen: list[str] = []
            while time.monotonic() - started < deadline_s:
                history = await runtime.bus.history(played.call_sid)
                for topic, _ in history[len(seen) :]:
                    seen.append(topic)
                    progress(f"{time.monotonic() - started:5.1f}s  {_step(topic)}")
                if any(t.endswith(("notification.sent.v1", "notification.failed.v1")) for t in seen):
                    break
                await asyncio.sleep(0.1)
            else:
                raise DemoFailed(f"the call did not reach its SMS within {deadline_s:.0f}s; steps: {seen}")
            history = await runtime.bus.history(played.call_sid)

        async with httpx.AsyncClient() as client:
            issues = (await client.get(f"{urls.jira}/_sandbox/issues")).json()
            sms = (await client.get(f"{urls.twilio}/_sandbox/messages")).json()
            invalid = [
                r
                for base in (urls.twilio, urls.openai, urls.jira)
                for r in (await client.get(f"{base}/_sandbox/requests")).json()
                if not r.get("valid", True)
            ]
    matching = [
        i for i in issues if i["properties"].get("voiceticket.call", {}).get("callSid") == played.call_sid
    ]
    if len(matching) != 1:
        raise DemoFailed(f"expected one request for the call, found {len(matching)}")
    first = _parse(history[0][1])
    timeline = [(_step(topic), (_parse(at) - first)) for topic, at in history]
    to_caller = [m for m in sms if m.get("to", m.get("To")) == sample.caller]
    heard = transcripts.get(played.call_sid)
    recognition = None
    if heard is not None:
        recognition = Recognition(
            engine=engine,
            model=heard.model,
            recognised=heard.transcript,
            reference=sample.transcript,
            word_error_rate=word_error_rate(sample.transcript, heard.transcript),
            detected_language=heard.detected_language,
            note=note,
        )
    return DemoResult(played.call_sid, matching[0], to_caller, timeline, invalid, recognition)


@contextlib.asynccontextmanager
async def _transcripts(runtime: EmbeddedRuntime) -> AsyncIterator[dict[str, CallTranscribed]]:
    """The ``call.transcribed`` events of the run, by CallSid, read from the bus as the analyzer
    reads them (its own consumer group, personal fields unsealed)."""

    heard: dict[str, CallTranscribed] = {}

    async def keep(event: Event) -> list[Event]:
        if isinstance(event, CallTranscribed):
            heard[event.call_sid] = event
        return []

    task = asyncio.create_task(runtime.bus.consume("voiceticket-demo", [CallTranscribed], keep))
    try:
        yield heard
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def _parse(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def run_distributed_demo(
    sample: SampleCall, workdir: Path, progress: Callable[[str], None], timeout: float = 90.0
) -> DemoResult:
    """The same call through six service processes on a real Kafka broker (Java needed)."""

    import contextlib
    import os

    from voiceticket_sandbox.caller import CallerSimulator
    from voiceticket_sandbox.demo_tenant import ACCOUNT_SID, AUTH_TOKEN, SUPPORT_LINE
    from voiceticket_sandbox.devstack import Stack
    from voiceticket_sandbox.kafka_broker import LocalKafkaBroker

    with contextlib.ExitStack() as stack_of_things:
        bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
        if not bootstrap:
            progress("starting a local Kafka broker (Apache Kafka 4.x from Maven Central)")
            bootstrap = stack_of_things.enter_context(LocalKafkaBroker()).bootstrap_servers
        progress("starting sandboxes, config-api and five services as processes")
        stack = Stack(workdir, bootstrap)
        stack_of_things.callback(stack.stop)
        stack.start()
        simulator = CallerSimulator(stack.ingress_url, ACCOUNT_SID, AUTH_TOKEN, stack.sandbox.twilio)
        played = asyncio.run(
            simulator.play_call(
                sample.caller, SUPPORT_LINE, sample.audio, sample.transcript, sample.duration_seconds
            )
        )
        progress("call played; waiting for the request and the SMS")
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            issues = [
                i
                for i in stack.issues()
                if i["properties"].get("voiceticket.call", {}).get("callSid") == played.call_sid
            ]
            sms = [m for m in stack.sms_sent() if m["body"].get("To") == sample.caller]
            if issues and issues[0]["comments"] and sms:
                progress(f"{time.monotonic() - started:5.1f}s  JSM request created and SMS sent")
                return DemoResult(played.call_sid, issues[0], [{"body": m["body"]["Body"]} for m in sms])
            time.sleep(0.3)
        raise DemoFailed(f"no request and SMS within {timeout:.0f}s; see the service logs in {workdir}")
