"""Judging a drained run, call by call, and the run's report (counts and recovery times)."""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from chaos_callers import PlayedCall
from chaos_harness import Strike, group_of
from chaos_observe import World
from chaos_plan import CONSUMERS, Plan, call_marker

PROPERTY = "voiceticket.call"
PROCESS_FAULTS = {"kill", "kill-in-jira-create", "kill-in-sms-send", "kill-before-commit", "sigterm",
                  "broker-restart", "config-api-restart", "rolling-restart", "rolling-upgrade"}  # fmt: skip


@dataclass
class CallVerdict:
    index: int
    call_sid: str
    requests: list[str] = field(default_factory=list)
    """Keys of the JSM requests that name the call."""
    transcript_comments: int = 0
    sms: int = 0
    completed_at: float | None = None
    """When the call's SMS was accepted (the end of its path), ``time.time()``."""
    problems: list[str] = field(default_factory=list)


def judge_calls(played: list[PlayedCall], world: World) -> list[CallVerdict]:
    """Exactly one request per call (by its CallSid, wherever the request names it), with the
    call's issue property and the transcript comment once; exactly one SMS with the request key
    (none for a caller who opted out, nor on the line with SMS off)."""
    issue_texts = [(issue, json.dumps(issue)) for issue in world.issues]
    sms_by_caller: dict[str, list[dict[str, Any]]] = {}
    for message in world.messages:
        sms_by_caller.setdefault(str(message.get("to")), []).append(message)
    verdicts = []
    for call in played:
        verdict = CallVerdict(call.plan.index, call.call_sid, problems=list(call.problems))
        verdicts.append(verdict)
        if not call.accepted:
            verdict.problems.append("lost at the edge: ingress never accepted the recording callback")
            continue
        mine = [issue for issue, text in issue_texts if call.call_sid in text]
        verdict.requests = [str(issue["key"]) for issue in mine]
        if not mine:
            verdict.problems.append("lost: no JSM request names the call")
        elif len(mine) > 1:
            verdict.problems.append(f"duplicate JSM requests: {verdict.requests}")
        marker = call_marker(call.plan.index)
        for issue in mine:
            prop = issue.get("properties", {}).get(PROPERTY) or {}
            if prop.get("callSid") != call.call_sid:
                verdict.problems.append(f"{issue['key']}: issue property {PROPERTY} does not name the call")
            comments = [c for c in issue.get("comments", []) if marker in str(c.get("body"))]
            verdict.transcript_comments += len(comments)
            if any(c.get("public") for c in comments):
                verdict.problems.append(f"{issue['key']}: the transcript comment is public")
        if mine and verdict.transcript_comments != 1:
            verdict.problems.append(f"transcript comment {verdict.transcript_comments} times")
        sms = sms_by_caller.get(call.plan.caller, [])
        verdict.sms = len(sms)
        if not call.plan.sms_line:
            if sms:
                verdict.problems.append(f"{len(sms)} SMS on a line with SMS off")
        elif call.plan.opted_out:
            if sms:
                verdict.problems.append(f"{len(sms)} SMS to a caller who opted out")
        elif len(sms) != 1:
            verdict.problems.append(f"{len(sms)} SMS (exactly one expected)")
        elif len(mine) == 1 and not re.search(
            rf"\b{re.escape(verdict.requests[0])}\b", str(sms[0].get("body"))
        ):
            verdict.problems.append(f"the SMS does not carry {verdict.requests[0]}")
        if sms:
            verdict.completed_at = min(float(m.get("accepted_at") or 0.0) for m in sms)
    return verdicts


def judge_dead_letters(dead_letters: dict[str, list[str]], strikes: list[Strike]) -> list[str]:
    """The dead-letter topics hold what the schedule poisoned, and nothing else."""
    problems = []
    for service in CONSUMERS:
        group = group_of(service)
        poisoned = {k for s in strikes if s.fault.kind == "poison" and s.fault.target == service
                    for k in s.poison_keys if s.error is None}  # fmt: skip
        found = Counter(dead_letters.get(group, []))
        unexpected = sorted(set(found) - poisoned)
        missing = sorted(poisoned - set(found))
        if unexpected:
            problems.append(f"{group}: dead letters nobody poisoned (calls lost to the DLQ): {unexpected}")
        if missing:
            problems.append(f"{group}: poisoned records not dead-lettered: {missing}")
    return problems


def recovery(
    strikes: list[Strike], played: list[PlayedCall], verdicts: list[CallVerdict]
) -> list[dict[str, Any]]:
    """Per fault: how long until the next call completed, and until the first call that reached
    ingress after the fault completed (the whole path working again)."""
    done = [(v.completed_at, c.hung_up_at) for c, v in zip(played, verdicts, strict=True) if v.completed_at]
    rows = []
    for strike in strikes:
        row = strike.as_json()
        after = [at for at, _ in done if at is not None and at > strike.started]
        fresh = [at for at, hung in done if at is not None and hung is not None and hung > strike.started]
        row["next_completion_s"] = round(min(after) - strike.started, 2) if after else None
        row["recovery_s"] = round(min(fresh) - strike.started, 2) if fresh else None
        rows.append(row)
    return rows


def summary(
    plan: Plan,
    played: list[PlayedCall],
    verdicts: list[CallVerdict],
    strikes: list[Strike],
    world: World,
    dead_letters: dict[str, list[str]],
    timings: dict[str, float],
) -> dict[str, Any]:
    rows = recovery(strikes, played, verdicts)
    measured = [r["recovery_s"] for r in rows if r["kind"] in PROCESS_FAULTS and r["recovery_s"] is not None]
    return {
        "seed": plan.seed,
        "size": plan.size.name,
        "replay": plan.describe().splitlines()[0],
        "calls": len(played),
        "calls_accepted": sum(c.accepted for c in played),
        "calls_opted_out": sum(c.plan.opted_out for c in played),
        "calls_on_the_line_without_sms": sum(not c.plan.sms_line for c in played),
        "calls_with_duplicates": sum(
            bool(c.plan.duplicate_recordings or c.plan.duplicate_voice) for c in played
        ),
        "calls_out_of_order": sum(c.plan.out_of_order for c in played),
        "kills": sum(s.sigkills for s in strikes),
        "sigterms": sum(s.sigterms for s in strikes),
        "restarts": sum(s.restarts for s in strikes),
        "crash_restarts": sum(s.crash_restarts for s in strikes),
        "broker_restarts": sum(s.fault.kind == "broker-restart" for s in strikes),
        "provider_faults": sum(s.fault.kind == "provider" for s in strikes),
        "poisoned": sum(len(s.poison_keys) for s in strikes),
        "faults_failed": [s.fault.describe() + f": {s.error}" for s in strikes if s.error],
        "requests": len(world.issues),
        "sms": len(world.messages),
        "dead_letters": sum(len(keys) for keys in dead_letters.values()),
        "dead_letters_by_group": {g: len(keys) for g, keys in dead_letters.items()},
        "provider_requests": {p: len(r) for p, r in world.requests.items()},
        "max_recovery_s": max(measured) if measured else None,
        "timings_s": timings,
        "faults": rows,
    }


def evidence(logs: dict[str, str], call_sid: str, per_process: int = 12) -> str:
    """The log lines of every process that mention the call: its CallSid, or a trace id of a
    line that does (a dead-letter line names the trace, not the call); the last few each."""
    traces = {
        match
        for text in logs.values()
        for line in text.splitlines()
        if call_sid in line
        for match in re.findall(r'"trace_id": "([0-9a-f]{32})"', line)
    }
    out = []
    for name, text in logs.items():
        lines = [line for line in text.splitlines() if call_sid in line or any(t in line for t in traces)]
        if lines:
            out.append(f"--- {name}\n" + "\n".join(line[:600] for line in lines[-per_process:]))
    return "\n".join(out)
