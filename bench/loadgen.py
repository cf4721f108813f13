"""The benchmark's load generator, in its own process: open-loop webhooks or whole calls.

Open loop: request i is sent at ``start + i / rate`` whether or not earlier ones were answered,
and its latency counts from that planned instant (so a stalled server cannot hide behind a
stalled generator, "coordinated omission"). Reads a JSON job, writes a JSON result:

    python bench/loadgen.py job.json result.json

``{"mode": "webhooks", ...}`` sends signed incoming-call webhooks (pre-signed before the clock
starts, over a minimal keep-alive HTTP/1.1 client: httpx would cost more CPU than the server).
``{"mode": "calls", ...}`` answers N calls first (incoming-call webhook, the caller speaks), then
hangs them up on a schedule (the recording status callback: the clock starts) and waits for each
call's SMS at the Twilio stand-in.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx

from voiceticket_sandbox.audio import make_tone_wav
from voiceticket_sandbox.caller import SUPPORT_MESSAGES, AnsweredCall, CallerSimulator, PlayedCall
from voiceticket_sandbox.twilio_webhooks import twilio_signature

TRANSCRIPTS = SUPPORT_MESSAGES


# -- webhooks -----------------------------------------------------------------------------------
class _Connections:
    """Keep-alive HTTP/1.1 connections to one origin; a new one whenever none is idle."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        self.opened = 0

    async def request(self, raw: bytes) -> int:
        reader, writer = self.idle.pop() if self.idle else await self._open()
        try:
            writer.write(raw)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head.split(b" ", 2)[1])
            length, close = 0, False
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.lower() == b"content-length":
                    length = int(value)
                elif name.lower() == b"connection" and value.strip().lower() == b"close":
                    close = True
            await reader.readexactly(length)
        except BaseException:
            writer.close()
            raise
        if close:
            writer.close()
        else:
            self.idle.append((reader, writer))
        return status

    async def _open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        self.opened += 1
        return await asyncio.open_connection(self.host, self.port)

    def close(self) -> None:
        for _, writer in self.idle:
            writer.close()


def _signed_voice_requests(job: dict[str, Any], count: int) -> list[bytes]:
    url = job["url"].rstrip("/") + "/twilio/voice"
    parts = urlsplit(url)
    simulator = CallerSimulator(job["url"], job["account_sid"], job["auth_token"], "http://unused")
    raws = []
    for n in range(count):
        params = simulator.call_params(
            "CA" + secrets.token_hex(16), f"+1415{n % 10_000_000:07d}", job["line"]
        )
        params["CallStatus"] = "ringing"
        body = urlencode(params).encode()
        signature = twilio_signature(job["auth_token"], url, params)
        head = (
            f"POST {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\nUser-Agent: TwilioProxy/1.1\r\n"
            "Content-Type: application/x-www-form-urlencoded\r\n"
            f"Content-Length: {len(body)}\r\nX-Twilio-Signature: {signature}\r\n\r\n"
        )
        raws.append(head.encode() + body)
    return raws


async def webhooks(job: dict[str, Any]) -> dict[str, Any]:
    """``rate`` signed incoming-call webhooks a second for ``duration_s`` seconds to ``url``."""
    rate, duration = float(job["rate"]), float(job["duration_s"])
    raws = _signed_voice_requests(job, int(rate * duration))
    parts = urlsplit(job["url"])
    pool = _Connections(parts.hostname or "127.0.0.1", parts.port or 80)
    latencies: list[float] = []
    statuses: Counter[str] = Counter()
    timeout = float(job.get("timeout_s", 10.0))

    async def one(raw: bytes, planned: float) -> None:
        try:
            status = await asyncio.wait_for(pool.request(raw), timeout)
        except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError) as exc:
            statuses[type(exc).__name__] += 1
            return
        statuses[str(status)] += 1
        if status == 200:
            latencies.append((time.perf_counter() - planned) * 1000)

    tasks: list[asyncio.Task[None]] = []
    start = time.perf_counter() + 0.2
    for i, raw in enumerate(raws):
        planned = start + i / rate
        delay = planned - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(raw, planned)))
    sent_s = time.perf_counter() - start
    await asyncio.gather(*tasks)
    pool.close()
    return {
        "rate": rate,
        "duration_s": duration,
        "sent": len(raws),
        "send_span_s": round(sent_s, 3),
        "connections": pool.opened,
        "statuses": dict(statuses),
        "latencies_ms": [round(x, 3) for x in latencies],
    }


# -- calls --------------------------------------------------------------------------------------
async def calls(job: dict[str, Any]) -> dict[str, Any]:
    """Answer ``calls`` calls, hang them up (all at once, or ``rate`` a second), await the SMS."""
    count, rate = int(job["calls"]), job.get("rate")
    tag = 100 + int(job.get("tag", 0)) % 900
    twilio = job["twilio"].rstrip("/")
    audios = [make_tone_wav(1.0, frequency=300 + 40 * k) for k in range(len(TRANSCRIPTS))]
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:
        simulator = CallerSimulator(
            job["ingress"], job["account_sid"], job["auth_token"], twilio, http_client=client
        )
        callers = [f"+1{tag:03d}55{n:05d}" for n in range(count)]
        gate = asyncio.Semaphore(16)

        async def answer(n: int) -> AnsweredCall:
            k = n % len(TRANSCRIPTS)
            async with gate:
                return await simulator.answer_call(callers[n], job["line"], audios[k], TRANSCRIPTS[k], 10)

        answered = await asyncio.gather(*(answer(n) for n in range(count)))
        await asyncio.sleep(0.5)

        async def hang_up(call: AnsweredCall, at: float) -> PlayedCall:
            delay = at - time.time()
            if delay > 0:
                await asyncio.sleep(delay)
            return await simulator.hang_up(call)

        start = time.time() + 0.1
        hung_up = await asyncio.gather(
            *(hang_up(call, start + (n / float(rate) if rate else 0.0)) for n, call in enumerate(answered))
        )
        deadline = start + float(job.get("deadline_s", 300))
        wanted = set(callers)
        sms: dict[str, list[float]] = {}
        while time.time() < deadline:
            messages = (await client.get(f"{twilio}/_sandbox/messages")).json()
            sms = {}
            for m in messages:
                if m["to"] in wanted:
                    sms.setdefault(m["to"], []).append(float(m.get("accepted_at") or time.time()))
            if len(sms) >= count:
                break
            await asyncio.sleep(0.25)
        await asyncio.sleep(float(job.get("settle_s", 1.0)))  # late duplicates would show up here
        messages = (await client.get(f"{twilio}/_sandbox/messages")).json()
        sms = {}
        for m in messages:
            if m["to"] in wanted:
                sms.setdefault(m["to"], []).append(float(m.get("accepted_at") or time.time()))
        issues = (await client.get(f"{job['jira']}/_sandbox/issues")).json()
        faults = {
            name: (await client.get(f"{job[name]}/_sandbox/faults")).json()
            for name in ("openai", "jira", "twilio")
        }
    sids = {p.call_sid for p in hung_up}
    tickets: Counter[str] = Counter(
        i["properties"].get("voiceticket.call", {}).get("callSid") for i in issues
    )
    per_call: list[dict[str, Any]] = []
    for caller, played in zip(callers, hung_up, strict=True):
        sent = played.recording_sent_at
        first_sms = min(sms[caller]) if caller in sms else None
        per_call.append(
            {
                "callback_at": sent,
                "sms_at": first_sms,
                "latency_s": None if first_sms is None or sent is None else round(first_sms - sent, 4),
                "sms_count": len(sms.get(caller, [])),
                "tickets": tickets.get(played.call_sid, 0),
                "callback_status": played.recording_status,
            }
        )
    callbacks = [c["callback_at"] for c in per_call if c["callback_at"]]
    done = [c["sms_at"] for c in per_call if c["sms_at"]]
    return {
        "calls": count,
        "rate": rate,
        "first_callback_at": min(callbacks) if callbacks else None,
        "last_callback_at": max(callbacks) if callbacks else None,
        "last_sms_at": max(done) if done else None,
        "completed": len(done),
        "exactly_one_sms": sum(1 for c in per_call if c["sms_count"] == 1),
        "exactly_one_ticket": sum(1 for c in per_call if c["tickets"] == 1),
        "duplicates": sum(max(c["sms_count"] - 1, 0) + max(c["tickets"] - 1, 0) for c in per_call),
        "tickets_for_these_calls": sum(tickets.get(s, 0) for s in sids),
        "latencies_s": sorted(c["latency_s"] for c in per_call if c["latency_s"] is not None),
        # How ingress answered the recording callbacks (a 503 is a shed callback: its call is lost
        # here, as this caller does not retry).
        "callback_statuses": dict(Counter(str(c["callback_status"]) for c in per_call)),
        # What a call that did not end in exactly one ticket and one SMS got (no phone numbers):
        # the evidence a failed correctness check is read from.
        "incomplete": [
            {
                "call_sid": p.call_sid,
                "callback_status": c["callback_status"],
                "tickets": c["tickets"],
                "sms_count": c["sms_count"],
            }  # fmt: skip
            for p, c in zip(hung_up, per_call, strict=True)
            if c["tickets"] != 1 or c["sms_count"] != 1
        ],
        "faults": faults,
    }


def main() -> int:
    job = json.loads(Path(sys.argv[1]).read_text())
    work = webhooks if job["mode"] == "webhooks" else calls
    result = asyncio.run(work(job))
    Path(sys.argv[2]).write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
