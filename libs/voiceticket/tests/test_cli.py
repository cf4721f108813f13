"""The ``voiceticket`` command as a user runs it: a real subprocess, exit codes scripts rely on."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from voiceticket.samples import sample_calls


def voiceticket(
    *args: str, cwd: Path | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "voiceticket", *args], capture_output=True, text=True, timeout=timeout, cwd=cwd
    )


@pytest.mark.parametrize(
    "command",
    [
        [],
        ["run"],
        ["demo"],
        ["samples"],
        ["simulate-call"],
        ["tenants", "list"],
        ["tenants", "create"],
        ["lines", "list"],
        ["lines", "set"],
        ["dead-letters", "list"],
        ["dead-letters", "replay"],
        ["audit", "list"],
        ["tenants", "show"],
        ["tenants", "update"],
        ["tenants", "delete"],
        ["lines", "show"],
        ["lines", "delete"],
        ["credentials", "set"],
        ["credentials", "rotate"],
        ["master-key", "rotate"],
        ["tokens", "create"],
        ["tokens", "list"],
        ["tokens", "revoke"],
    ],  # fmt: skip
)
def test_every_command_has_help(command: list[str]) -> None:
    result = voiceticket(*command, "--help")
    assert result.returncode == 0, result.stderr
    assert "Usage: voiceticket" in result.stdout


def test_samples_lists_the_bundled_calls_in_two_languages() -> None:
    result = voiceticket("samples")
    assert result.returncode == 0
    for name in sample_calls():
        assert name in result.stdout
    assert {c.language for c in sample_calls().values()} >= {"en", "de"}


def test_bundled_audio_is_real_speech_length_phone_audio() -> None:
    import wave

    for call in sample_calls().values():
        with wave.open(str(call.path)) as wav:
            assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (8000, 1, 2)
            assert wav.getnframes() / wav.getframerate() > 5


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["demo", "--sample", "nope"], 2, "unknown sample"),
        (["run", "--service", "nope"], 2, "unknown service"),
        (
            ["tenants", "list", "--config-api-url", "http://127.0.0.1:9", "--admin-token", "x"],
            3,
            "unreachable",
        ),
        (
            ["dead-letters", "list", "voiceticket-notifier", "--data-dir", "/nonexistent"],
            2,
            "no embedded bus",
        ),
        (["frobnicate"], 2, "No such command"),
    ],
)
def test_errors_are_clear_and_exit_codes_distinguish_them(args: list[str], code: int, message: str) -> None:
    result = voiceticket(*args)
    assert result.returncode == code, (result.stdout, result.stderr)
    assert message in result.stderr


def test_admin_commands_need_a_token(tmp_path: Path) -> None:
    result = voiceticket("tenants", "list", "--data-dir", str(tmp_path), cwd=tmp_path)
    assert result.returncode == 2 and "no admin token" in result.stderr


def test_demo_turns_a_sample_call_into_a_ticket_and_an_sms() -> None:
    # The stand-in's reference transcript, so the account number is exact (the local engine
    # writes "44,817,723"; its own demo test follows).
    result = voiceticket("demo", "--sample", "billing-account", "--json", "--speech-to-text", "stand-in")
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    issue = out["issue"]
    assert issue["key"].startswith("HELP-")
    assert "44817723" in issue["requestFieldValues"]["description"]
    assert issue["properties"]["voiceticket.call"]["callSid"] == out["call_sid"]
    assert issue["comments"][0]["public"] is False
    assert [s for s in out["sms"] if issue["key"] in s["body"]]
    steps = [step for step, _ in out["timeline"]]
    assert steps[0].startswith("call answered") and "SMS sent" in steps
    # after the SMS only its delivery receipts (sent, delivered) may arrive, each at most once
    after = steps[steps.index("SMS sent") + 1 :]
    assert set(after) <= {"SMS delivery receipt"} and len(after) <= 2


def test_the_demo_recognises_the_sample_with_the_local_engine_and_reports_the_word_error_rate() -> None:
    result = voiceticket("demo", "--json")
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    heard = out["speech_to_text"]
    assert heard["engine"] == "local" and heard["model"] == "local:tiny.en"
    assert heard["recognised"] != heard["reference"]  # recognised, not looked up: tiny.en errs
    assert 0.0 < heard["word_error_rate"] <= 0.5
    assert heard["detected_language"] == "en"
    assert out["issue"]["key"].startswith("HELP-") and out["sms"]


def test_dead_letters_can_be_listed_and_replayed_on_the_embedded_bus(tmp_path: Path) -> None:
    import asyncio

    from voiceticket_common.bus.embedded import EmbeddedEventBus
    from voiceticket_common.bus.port import dead_letter_topic
    from voiceticket_common.events import TicketCreated

    call_sid = "CA" + "7" * 32
    event = TicketCreated(tenant_id="acme", call_sid=call_sid, line_number="+15005550006",
                          caller_number="+14155550100", issue_key="HELP-1", issue_id="1",
                          service_desk_id="4", request_type_id="41", summary="s")  # fmt: skip

    async def dead_letter_one() -> None:
        bus = EmbeddedEventBus(tmp_path / "bus.db", "test")
        await bus.start()
        headers = [("ce_type", event.ce_type().encode()), ("ce_specversion", b"1.0"),
                   ("dlq_original_topic", event.topic().encode()), ("dlq_error_type", b"PermanentError"),
                   ("dlq_error", b"jira said no"), ("dlq_attempts", b"1")]  # fmt: skip
        await bus._write([(dead_letter_topic("voiceticket-notifier"), call_sid.encode(),
                           event.model_dump_json().encode(), headers)])  # fmt: skip
        await bus.stop()

    asyncio.run(dead_letter_one())
    listed = voiceticket("dead-letters", "list", "voiceticket-notifier", "--data-dir", str(tmp_path))
    assert listed.returncode == 0 and call_sid in listed.stdout and "jira said no" in listed.stdout
    replayed = voiceticket("dead-letters", "replay", "voiceticket-notifier", "--call-sid", call_sid,
                           "--data-dir", str(tmp_path))  # fmt: skip
    assert replayed.returncode == 0 and "1 dead letter(s) replayed" in replayed.stderr

    async def topic_records() -> list:
        bus = EmbeddedEventBus(tmp_path / "bus.db", "test")
        await bus.start()
        cursor = await bus.db.execute("SELECT key FROM bus_records WHERE topic = ?", (event.topic(),))
        rows = await cursor.fetchall()
        await bus.stop()
        return rows

    assert asyncio.run(topic_records()) == [(call_sid.encode(),)]
    missing = voiceticket("dead-letters", "replay", "voiceticket-notifier", "--call-sid", "CA" + "8" * 32,
                          "--data-dir", str(tmp_path))  # fmt: skip
    assert missing.returncode == 1


def test_audit_list_shows_who_changed_what(tmp_path: Path) -> None:
    """`voiceticket audit list` against a real config-api: entries newest first, filtered."""
    import socket
    import threading
    import time

    import httpx
    import uvicorn
    from cryptography.fernet import Fernet

    from voiceticket_config_api import Settings, create_app

    alice, ci = "alice-cli-token-0123456789", "ci-cli-token-0123456789ab"  # noqa: S105 - test values
    secret = "CANARY-cli-credential-93ab17"  # noqa: S105 - test value
    settings = Settings(
        _env_file=None,
        env="test",
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'config.db'}",
        master_keys=f"k1:{Fernet.generate_key().decode()}",
        admin_tokens=f"alice:{alice},ci:{ci}",
    )
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline
        time.sleep(0.05)
    url = f"http://127.0.0.1:{port}"
    try:
        tenant = {"id": "acme", "name": "Acme", "jira_base_url": "https://acme.atlassian.net"}
        assert (
            httpx.post(
                f"{url}/v1/tenants", json=tenant, headers={"Authorization": f"Bearer {alice}"}
            ).status_code
            == 201
        )
        r = httpx.put(f"{url}/v1/tenants/acme/credentials/openai_api_key", json={"value": secret},
                      headers={"Authorization": f"Bearer {ci}"})  # fmt: skip
        assert r.status_code == 200
        assert httpx.delete(f"{url}/v1/tenants/acme").status_code == 401

        listed = voiceticket(
            "audit", "list", "--config-api-url", url, "--admin-token", alice, "--since", "1h"
        )
        assert listed.returncode == 0, listed.stderr
        rows = listed.stdout.splitlines()
        assert [row.split()[2] for row in rows] == ["tenant.delete", "credential.set", "tenant.create"]
        assert rows[0].split()[1] == "anonymous" and "refused 401" in rows[0]
        assert rows[1].split()[1] == "ci" and rows[2].split()[1] == "alice"
        assert "3 audit entries" in listed.stderr
        assert secret not in listed.stdout and alice not in listed.stdout

        mine = voiceticket("audit", "list", "--config-api-url", url, "--admin-token", ci, "--actor", "alice",
                           "--json")  # fmt: skip
        assert mine.returncode == 0, mine.stderr
        assert [(e["actor"], e["action"], e["target"]) for e in json.loads(mine.stdout)] == [
            ("alice", "tenant.create", "tenant:acme")
        ]
        paged = voiceticket("audit", "list", "--config-api-url", url, "--admin-token", ci, "--limit", "2")
        assert paged.returncode == 0 and len(paged.stdout.splitlines()) == 2
        refused = voiceticket("audit", "list", "--config-api-url", url, "--admin-token", "wrong")
        assert refused.returncode == 3 and "refused the admin token" in refused.stderr
        bad = voiceticket("audit", "list", "--config-api-url", url, "--admin-token", ci, "--since", "soon")
        assert bad.returncode == 1 and "422" in bad.stderr
    finally:
        server.should_exit = True
        thread.join(timeout=20)
