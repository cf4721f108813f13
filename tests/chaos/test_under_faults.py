"""Calls through the distributed deployment while a seeded schedule of faults strikes it.

Every service is its own process (two of each consumer), on a real Kafka broker and Postgres,
against the spec-validating stand-ins. While the calls arrive, processes are SIGKILLed (at random
moments, and while a Jira create or an SMS send is in flight), replicas SIGTERMed under load, the
broker and config-api restarted, the stand-ins made to fail, slow down and rate-limit, Twilio's
callbacks duplicated and reordered, and malformed records slipped onto the consumers' topics.
After the traffic drains, each call must be exactly one JSM request with its property and the
transcript comment once, and exactly one SMS (none for a caller who opted out or who called the
line with SMS off); the dead-letter
topics must hold the poisoned records and nothing else. Counts and recovery times are printed and
written to ``report.json`` in the run's work directory.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from chaos_callers import ChaosCaller, PlayedCall
from chaos_harness import (
    INPUT_EVENTS,
    START_TIMEOUT,
    UPGRADE_FIELD,
    Striker,
    chaos_stack,
    group_of,
    restartable_broker,
)
from chaos_observe import World, group_lags, look, topic_keys, topic_records
from chaos_plan import CONSUMERS, Plan, make_plan, size_from_env, spare_from_env
from chaos_verdict import evidence, judge_calls, judge_dead_letters, summary

from voiceticket_common.bus.port import dead_letter_topic
from voiceticket_common.events import ConsentDeclined, RecordingAbsent
from voiceticket_sandbox.devstack import Stack
from voiceticket_sandbox.kafka_broker import LocalKafkaBroker

pytestmark = pytest.mark.chaos

SIZE = size_from_env()
POLL_SECONDS = 3.0


class Log:
    """Progress lines, shown live (outside pytest's capture) and kept in the work directory."""

    def __init__(self, path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        self.path, self.capsys, self.started = path, capsys, time.monotonic()

    def __call__(self, line: str) -> None:
        stamped = f"[chaos {time.monotonic() - self.started:7.1f}s] {line}"
        with self.path.open("a") as f:
            f.write(stamped + "\n")
        with self.capsys.disabled():
            print(stamped, flush=True)


@pytest.mark.timeout(SIZE.timeout_seconds)
def test_every_call_is_one_request_and_one_sms_under_faults(
    chaos_seed: int, chaos_workdir: Path, postgres_dsn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    plan = make_plan(chaos_seed, SIZE, spare_from_env())
    log = Log(chaos_workdir / "chaos.log", capsys)
    log(f"replay with: {plan.describe().splitlines()[0]}   (work dir {chaos_workdir})")
    log("schedule:\n" + plan.describe())
    (chaos_workdir / "plan.txt").write_text(plan.describe() + "\n")
    began = time.monotonic()
    with restartable_broker(chaos_workdir / "kafka") as broker:
        stack = chaos_stack(chaos_workdir / "stack", broker, postgres_dsn)
        try:
            stack.start(timeout=START_TIMEOUT)
            started = time.monotonic() - began
            log(f"stack up in {started:.0f}s: {', '.join(stack.processes)}")
            report, problems = asyncio.run(run(plan, stack, broker, log))
        finally:
            stack.stop()
    report["timings_s"]["start"] = round(started, 1)
    report["timings_s"]["wall"] = round(time.monotonic() - began, 1)
    (chaos_workdir / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    log("report: " + json.dumps({k: v for k, v in report.items() if k != "faults"}))
    for row in report["faults"]:
        log(f"  {row['fault']}: down {seconds(row['down_s'])}, next call done {seconds(row['next_completion_s'])}, "
            f"recovered {seconds(row['recovery_s'])} {row['note']}")  # fmt: skip
    assert not problems, (
        f"{len(problems)} problem(s); replay with {report['replay']}; report {chaos_workdir / 'report.json'}\n"
        + "\n".join(problems[:60])
    )


async def run(
    plan: Plan, stack: Stack, broker: LocalKafkaBroker, log: Log
) -> tuple[dict[str, Any], list[str]]:
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=20)
    async with httpx.AsyncClient(timeout=15.0, limits=limits) as http:
        caller = ChaosCaller(stack.ingress_url, stack.sandbox.twilio, http)
        striker = Striker(stack, broker, log)
        loop = asyncio.get_running_loop()
        start = loop.time() + 1.0
        traffic_began = time.monotonic()

        async def ring(index: int) -> PlayedCall:
            call = plan.calls[index]
            await asyncio.sleep(max(0.0, start + call.at - loop.time()))
            return await caller.play(call)

        helpers = [
            asyncio.create_task(report_progress(stack, http, log)),
            asyncio.create_task(striker.supervise()),
        ]
        try:
            played, _ = await asyncio.gather(
                asyncio.gather(*(ring(i) for i in range(len(plan.calls)))),
                striker.run(plan.faults, start),
            )
            traffic = time.monotonic() - traffic_began
            log(
                f"traffic and faults done in {traffic:.0f}s; draining (deadline {plan.size.drain_seconds:.0f}s)"
            )
            drain_began = time.monotonic()
            drained = await drain(stack, http, played, plan.size.drain_seconds, log)
            drain_s = time.monotonic() - drain_began
        finally:
            for helper in helpers:
                helper.cancel()
            await asyncio.gather(*helpers, return_exceptions=True)
            await striker.close()
        world = await look(http, stack.sandbox, with_requests=True)
        down = [name for name in stack.processes if not stack.is_running(name)]
    dead_letters = {
        group_of(s): await topic_keys(stack.bootstrap_servers, stack.topic(dead_letter_topic(group_of(s))))
        for s in CONSUMERS
    }
    verdicts = judge_calls(played, world)
    timings = {"traffic": round(traffic, 1), "drain": round(drain_s, 1)}
    report = summary(plan, played, verdicts, striker.strikes, world, dead_letters, timings)
    upgraded = await upgraded_events(stack, striker)
    report["events_with_the_upgrade_field"] = upgraded
    problems = [] if drained else [f"not drained within {plan.size.drain_seconds:.0f}s"]
    problems += [f"fault not carried out: {failed}" for failed in report["faults_failed"]]
    problems += [f"down after the drain: {name}" for name in down]
    problems += [f"{name} needed a SIGKILL 30 s after SIGTERM ({s.fault.describe()})"
                 for s in striker.strikes for name in s.ungraceful]  # fmt: skip
    problems += [
        f"exited on its own and did not come back: {e}" for e in striker.unplanned_exits if "error" in e
    ]
    problems += judge_dead_letters(dead_letters, striker.strikes)
    if any(st.fault.kind == "rolling-upgrade" and st.whole for st in striker.strikes) and not all(
        upgraded.values()
    ):
        problems.append(f"the upgraded producers' events did not reach every topic: {upgraded}")
    invalid = [f"{p} {r['method']} {r['path']}: {r['errors'][:2]}" for p, rs in world.requests.items()
               for r in rs if not r.get("valid", True)]  # fmt: skip
    problems += [f"request against the provider's spec: {line}" for line in invalid[:10]]
    logs = stack.logs()
    bad = [v for v in verdicts if v.problems]
    for v in bad:
        problems.append(
            f"call #{v.index} {v.call_sid}: {'; '.join(v.problems)} (requests {v.requests}, sms {v.sms})\n"
            + evidence(logs, v.call_sid)
        )
    report["unplanned_exits"] = striker.unplanned_exits
    report["problem_calls"] = [
        {"index": v.index, "call_sid": v.call_sid, "problems": v.problems} for v in bad
    ]
    return report, problems


async def upgraded_events(stack: Stack, striker: Striker) -> dict[str, int]:
    """After a rolling upgrade: per consumer's input topic, the records that carry the new
    version's optional field (the consumers still on the old version read them too)."""
    if not any(st.fault.kind == "rolling-upgrade" for st in striker.strikes):
        return {}
    marker = f'"{UPGRADE_FIELD}":'.encode()
    counts: dict[str, int] = {}
    for event in INPUT_EVENTS.values():
        records = await topic_records(stack.bootstrap_servers, stack.topic(event.topic()))
        counts[event.topic()] = sum(marker in value for _, value in records)
    return counts


def seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}s"


def consumer_inputs(stack: Stack) -> dict[str, list[str]]:
    inputs = {group_of(s): [stack.topic(e.topic())] for s, e in INPUT_EVENTS.items()}
    inputs[group_of("jira-writer")] += [stack.topic(e.topic()) for e in (RecordingAbsent, ConsentDeclined)]
    return inputs


def finished(played: list[PlayedCall], world: World) -> int:
    """How many accepted calls have reached their end: a request with a comment, and the SMS."""
    sms_to = {str(m.get("to")) for m in world.messages}
    with_comment = [json.dumps(i) for i in world.issues if i.get("comments")]
    done = 0
    for call in played:
        if not call.accepted:
            continue
        ticket = any(call.call_sid in text for text in with_comment)
        if ticket and (not call.plan.expects_sms or call.plan.caller in sms_to):
            done += 1
    return done


async def drain(
    stack: Stack, http: httpx.AsyncClient, played: list[PlayedCall], deadline_s: float, log: Log
) -> bool:
    """Until every accepted call reached its end and no consumer group has anything uncommitted
    (nothing in flight, nothing waiting for a retry: no late duplicate can still come), or until
    the groups stand idle with calls unfinished (nothing more will happen), or the deadline."""
    accepted = sum(c.accepted for c in played)
    inputs = consumer_inputs(stack)
    deadline = time.monotonic() + deadline_s
    idle_polls = 0
    while True:
        world = await look(http, stack.sandbox)
        done = finished(played, world)
        try:
            lags = await asyncio.wait_for(group_lags(stack.bootstrap_servers, inputs), 30)
        except Exception as exc:  # the broker may still be catching up; ask again
            log(f"lag not readable yet: {type(exc).__name__}: {exc}")
            lags = {}
        idle = bool(lags) and not any(lags.values())
        idle_polls = idle_polls + 1 if idle else 0
        if done == accepted and idle_polls >= 2:
            log(f"drained: {done}/{accepted} calls finished, every group committed")
            return True
        if idle_polls >= 5:
            log(f"groups idle with {accepted - done} call(s) unfinished: nothing more will happen")
            return True
        if time.monotonic() > deadline:
            log(f"drain deadline: {done}/{accepted} calls finished, lags {lags}")
            return False
        await asyncio.sleep(POLL_SECONDS)  # between polls of a condition


async def report_progress(stack: Stack, http: httpx.AsyncClient, log: Log) -> None:
    while True:
        await asyncio.sleep(15)
        try:
            world = await look(http, stack.sandbox)
        except Exception as exc:  # progress is information only; the verdict reads again
            log(f"progress: stand-ins unreadable: {exc!r}")
            continue
        down = [n for n in stack.processes if not stack.is_running(n)]
        log(f"progress: {len(world.issues)} requests, {len(world.messages)} SMS; down: {down or 'none'}")
