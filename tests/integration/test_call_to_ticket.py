"""End to end: a signed call becomes exactly one JSM request and one SMS, through six processes
and a real Kafka broker. Leave any one service out and this fails: each owns one step."""

from __future__ import annotations

import asyncio
import time
import xml.etree.ElementTree as ET

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from voiceticket_common.events import CallReceived
from voiceticket_sandbox.caller import CallerSimulator, make_tone_wav
from voiceticket_sandbox.devstack import ACCOUNT_SID, AUTH_TOKEN, SMS_FROM, SUPPORT_LINE, Stack
from voiceticket_sandbox.twilio_webhooks import twilio_signature

CALLER = "+14155550123"
TRANSCRIPT = (
    "Hello, this is Dana Whitfield from Northwind. Our VPN has been down since this morning and "
    "nobody in the office can reach the file server. It is urgent. My account number is 44817723."
)


def wait_for(predicate, timeout: float = 90.0, interval: float = 0.5):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    return predicate()


def simulator(stack: Stack) -> CallerSimulator:
    return CallerSimulator(stack.ingress_url, ACCOUNT_SID, AUTH_TOKEN, stack.sandbox.twilio)


def test_a_signed_call_becomes_one_request_and_one_sms(stack: Stack) -> None:
    played = asyncio.run(simulator(stack).play_call(CALLER, SUPPORT_LINE, make_tone_wav(2.0), TRANSCRIPT))

    twiml = ET.fromstring(played.twiml)
    assert [say.text for say in twiml.findall("Say")][0] == "Thank you for calling Acme support."
    record = twiml.find("Record")
    assert record is not None and record.get("recordingStatusCallback", "").startswith(stack.ingress_url)

    def done() -> list[dict]:
        issues = [i for i in stack.issues() if played.call_sid in str(i)]
        sms = [r for r in stack.sms_sent() if r["body"]["To"] == CALLER]
        return issues if issues and issues[0]["comments"] and sms else []

    issues = wait_for(done)
    logs = stack.logs()
    assert issues, "no ticket with comment and SMS in time; service logs:\n" + "\n".join(
        f"--- {name}\n{text[-3000:]}" for name, text in logs.items()
    )
    assert len(issues) == 1
    [issue] = issues
    fields = issue["requestFieldValues"]
    assert issue["requestTypeId"] == "41", "an urgent outage is an incident"
    assert fields["summary"] and len(fields["summary"]) <= 255
    assert "VPN" in fields["summary"] + fields["description"]
    assert "44817723" in fields["description"], "the account number is extracted into the description"

    prop = issue["properties"]["voiceticket.call"]
    assert prop["callSid"] == played.call_sid
    assert prop["recordingSid"] == played.recording_sid
    assert prop["durationSeconds"] == 12

    [comment] = issue["comments"]
    assert comment["public"] is False
    assert "nobody in the office can reach the file server" in comment["body"]

    time.sleep(2)  # let any duplicate arrive before counting
    sms = [r for r in stack.sms_sent() if r["body"]["To"] == CALLER]
    assert len(sms) == 1
    form = sms[0]["body"]
    assert form["To"] == CALLER and form["From"] == SMS_FROM
    assert issue["key"] in form["Body"]

    invalid = [r for p in ("twilio", "openai", "jira") for r in stack.requests_to(p) if not r["valid"]]
    assert invalid == [], "every provider request must satisfy the official OpenAPI spec"

    for name, text in stack.logs().items():
        assert CALLER not in text, f"{name} logged the caller's number"
        assert "file server" not in text, f"{name} logged the transcript"
        assert AUTH_TOKEN not in text, f"{name} logged a secret"


@pytest.mark.parametrize("tamper", ["unsigned", "tampered"])
def test_unsigned_or_tampered_webhook_is_403_and_produces_no_ticket(stack: Stack, tamper: str) -> None:
    params = {"CallSid": "CA" + "d" * 32, "AccountSid": ACCOUNT_SID, "From": CALLER, "To": SUPPORT_LINE,
              "CallStatus": "ringing", "ApiVersion": "2010-04-01", "Direction": "inbound"}  # fmt: skip
    url = f"{stack.ingress_url}/twilio/voice"
    headers = {}
    if tamper == "tampered":
        headers["X-Twilio-Signature"] = twilio_signature(AUTH_TOKEN, url, params)
        params["From"] = "+19998887777"
    response = httpx.post(url, data=params, headers=headers)
    assert response.status_code == 403
    assert "d" * 32 not in response.text
    keys = asyncio.run(record_keys(stack.bootstrap_servers, stack.topic(CallReceived.topic())))
    assert keys, "the signed call of the other test is on the topic, so reading works"
    assert params["CallSid"].encode() not in keys, "a rejected webhook publishes no event"


async def record_keys(bootstrap: str, topic: str) -> set[bytes]:
    """Every key on ``topic`` right now, read from the beginning of each partition."""

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in await producer.partitions_for(topic)]
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        end = await consumer.end_offsets(partitions)
        keys: set[bytes] = set()
        deadline = asyncio.get_running_loop().time() + 15
        while asyncio.get_running_loop().time() < deadline:
            if all([await consumer.position(tp) >= offset for tp, offset in end.items()]):
                break
            for records in (await consumer.getmany(timeout_ms=300)).values():
                keys |= {r.key for r in records}
        return keys
    finally:
        await consumer.stop()
