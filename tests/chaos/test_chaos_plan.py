"""The schedule itself, without infrastructure: a seed replays it, and each size strikes what it
promises (the ci size: a kill of every service and a broker restart)."""

from __future__ import annotations

import pytest
from chaos_plan import CONSUMERS, PROVIDER_FAULTS, SIZES, make_plan, process_names, service_of

pytestmark = pytest.mark.chaos


@pytest.mark.parametrize("size", sorted(SIZES))
def test_a_seed_replays_the_same_calls_and_faults(size: str) -> None:
    assert make_plan(1234, SIZES[size]) == make_plan(1234, SIZES[size])
    assert make_plan(1234, SIZES[size]).faults != make_plan(1235, SIZES[size]).faults


def test_the_ci_size_kills_every_service_and_restarts_the_broker() -> None:
    for seed in range(20):
        plan = make_plan(seed, SIZES["ci"])
        killed = {service_of(f.target) for f in plan.faults if f.kind.startswith("kill")}
        assert killed == {"ingress", "config-api", *CONSUMERS}, seed
        assert [f.kind for f in plan.faults].count("broker-restart") == 1
        assert len(plan.calls) == 40
        assert len({c.caller for c in plan.calls}) == 40, "one caller number per call: SMS are told apart"
        assert all(0 <= f.at <= SIZES["ci"].traffic_seconds for f in plan.faults)


def test_every_struck_process_exists_and_broker_restarts_do_not_overlap() -> None:
    names = set(process_names())
    plan = make_plan(7, SIZES["full"])
    for fault in plan.faults:
        if fault.kind in ("kill", "sigterm"):
            assert fault.target in names
    restarts = [f for f in plan.faults if f.kind == "broker-restart"]
    assert len(restarts) == 2 and restarts[0].hard
    assert all(a.at + a.pause + 20 < b.at for a, b in zip(restarts, restarts[1:], strict=False))


def test_the_full_size_upgrades_and_kills_each_consumer_between_success_and_commit() -> None:
    plan = make_plan(11, SIZES["full"])
    kinds = [f.kind for f in plan.faults]
    assert kinds.count("rolling-upgrade") == 1
    assert {f.target for f in plan.faults if f.kind == "kill-before-commit"} == set(CONSUMERS)
    assert [f.kind for f in make_plan(3, SIZES["ci"]).faults].count("kill-before-commit") == 1


def test_the_full_size_strikes_with_every_provider_fault_and_resets_connections() -> None:
    plan = make_plan(5, SIZES["full"])
    labels = {f.provider.label for f in plan.faults if f.provider is not None}
    assert labels == {p.label for p in PROVIDER_FAULTS}
    resets = [p for p in PROVIDER_FAULTS if p.reset]
    assert {p.provider for p in resets} == {"openai", "jira", "twilio"}
    assert all(p.spec("t")["reset"] is True and p.status is None for p in resets)


def test_the_failpoints_hold_commits_and_add_the_upgrade_field_only_when_asked(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The product processes' ``sitecustomize``: inert without its folder; with it, commits go
    through the hold, and an upgraded process's events carry the new optional field."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    from chaos_harness import FAILPOINTS, UPGRADE_FIELD

    probe = (
        "import asyncio, json\n"
        "from voiceticket_common.bus import envelope, kafka_member\n"
        "from voiceticket_common.events import RecordingAbsent\n"
        "e = RecordingAbsent(tenant_id='acme', call_sid='CA' + '1' * 32, line_number='+15550100',\n"
        "    caller_number='+15550199', status='absent')\n"
        "_, value, _ = asyncio.run(envelope.seal_record(envelope.envelope_for(e, 'probe'), None))\n"
        f"print(kafka_member.KafkaGroupMember._commit.__name__, json.loads(value).get({UPGRADE_FIELD!r}))\n"
    )

    def run(**env: str) -> str:
        base = {k: v for k, v in os.environ.items() if not k.startswith("CHAOS_")}
        out = subprocess.run(
            [sys.executable, "-c", probe],
            env={**base, "PYTHONPATH": str(FAILPOINTS), **env},
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).parent,
        )
        return out.stdout.strip()

    assert run() == "_commit None"
    assert run(CHAOS_FAILPOINTS_DIR=str(tmp_path)) == "held_commit None"
    upgraded = run(CHAOS_FAILPOINTS_DIR=str(tmp_path), CHAOS_UPGRADED="1")
    assert upgraded.startswith("held_commit v1.1"), upgraded
