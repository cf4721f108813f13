"""The seeded plan of a chaos run: which calls arrive when, and which faults strike when.

Everything random is decided here, before the first call, from one seed: the same
``CHAOS_SEED`` and size give the same calls (arrival, caller, duplicates, order) and the same
fault schedule (kind, target, moment, pause). What a fault then hits (which records are in flight)
depends on timing, as in production.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass, field, replace

from voiceticket_sandbox.caller import SUPPORT_MESSAGES
from voiceticket_sandbox.demo_tenant import SUPPORT_LINE

QUIET_LINE = "+15005550010"
"""A second line of the tenant, the support line with SMS off (the harness seeds it)."""

CONSUMERS = ("transcriber", "analyzer", "jira-writer", "notifier")
REPLICAS = 2
"""Processes per consumer service: two members of each consumer group."""


def process_names() -> list[str]:
    """Every product process the schedule may strike (the stand-ins are never struck: their state
    is the outside world)."""
    names = ["config-api", "ingress"]
    for service in CONSUMERS:
        names += [service] + [f"{service}-{n}" for n in range(2, REPLICAS + 1)]
    return names


def service_of(process: str) -> str:
    head, _, tail = process.rpartition("-")
    return head if tail.isdigit() and head in CONSUMERS else process


@dataclass(frozen=True)
class Size:
    """How big a run is. ``traffic_seconds``: calls arrive over this window; faults strike in it."""

    name: str
    calls: int
    traffic_seconds: float
    random_kills: int
    """SIGKILLs of random processes at random moments, besides the aimed ones below."""
    kill_each_service: bool
    """One SIGKILL of every service (a random replica) at a random moment."""
    kills_in_jira_create: int
    kills_in_sms_send: int
    kills_before_commit: int
    """SIGKILLs of a consumer replica between a handler's success and its offset commit."""
    sigterms: int
    broker_restarts: int
    broker_hard_kills: int
    """Of the broker restarts, how many are a SIGKILL instead of a clean stop."""
    config_api_restarts: int
    rolling_restarts: int
    rolling_upgrades: int
    """Rolling restarts into a producer version that adds an optional field to every event."""
    provider_faults: int
    poison_per_group: int
    duplicate_share: float
    out_of_order_share: float
    opted_out_share: float
    sms_disabled_share: float
    """Calls to the line with SMS off (``QUIET_LINE``)."""
    drain_seconds: float
    """The generous deadline for the traffic to drain after the last fault."""
    timeout_seconds: float
    """The whole test's bound (pytest-timeout)."""


SIZES = {
    "ci": Size(
        name="ci",
        calls=40,
        traffic_seconds=75.0,
        random_kills=0,
        kill_each_service=True,
        kills_in_jira_create=1,
        kills_in_sms_send=1,
        kills_before_commit=1,
        sigterms=1,
        broker_restarts=1,
        broker_hard_kills=0,
        config_api_restarts=0,
        rolling_restarts=0,
        rolling_upgrades=0,
        provider_faults=6,
        poison_per_group=1,
        duplicate_share=0.15,
        out_of_order_share=0.15,
        opted_out_share=0.05,
        sms_disabled_share=0.1,
        drain_seconds=300.0,
        timeout_seconds=570.0,
    ),
    "full": Size(
        name="full",
        calls=200,
        traffic_seconds=300.0,
        random_kills=10,
        kill_each_service=True,
        kills_in_jira_create=2,
        kills_in_sms_send=2,
        kills_before_commit=4,
        sigterms=3,
        broker_restarts=2,
        broker_hard_kills=1,
        config_api_restarts=1,
        rolling_restarts=1,
        rolling_upgrades=1,
        provider_faults=21,
        poison_per_group=2,
        duplicate_share=0.15,
        out_of_order_share=0.15,
        opted_out_share=0.05,
        sms_disabled_share=0.1,
        drain_seconds=900.0,
        timeout_seconds=3300.0,
    ),
}


def size_from_env() -> Size:
    """``CHAOS_SIZE`` (ci | full, default full) and ``CHAOS_CALLS`` (overrides the size's calls;
    the traffic window scales with it)."""
    name = os.environ.get("CHAOS_SIZE", "full").strip().lower()
    if name not in SIZES:
        raise ValueError(f"CHAOS_SIZE must be one of {', '.join(SIZES)}, not {name!r}")
    size = SIZES[name]
    calls = os.environ.get("CHAOS_CALLS", "").strip()
    if calls:
        count = int(calls)
        if count < 1:
            raise ValueError("CHAOS_CALLS must be at least 1")
        window = max(30.0, size.traffic_seconds * count / size.calls)
        size = replace(size, calls=count, traffic_seconds=window)
    return size


# -- provider faults -------------------------------------------------------------------------------
JIRA_CREATE = r"/rest/servicedeskapi/request$"
SMS_SEND = r"/Messages\.json$"


@dataclass(frozen=True)
class ProviderFault:
    """One ``POST /_sandbox/faults`` at a stand-in."""

    label: str
    provider: str  # twilio | openai | jira
    method: str
    path_regex: str
    status: int | None = None
    retry_after: float | None = None
    delay_seconds: float = 0.0
    times: int = 1
    reset: bool = False
    """Answer with a TCP reset (the connection dropped, no HTTP answer) instead of a status."""

    def spec(self, tag: str) -> dict[str, object]:
        """The stand-in's fault body; ``tag`` goes into the regex as a comment (``(?#...)``) so the
        fault can be told apart from others on the same path when its state is read back."""
        return {
            "method": self.method,
            "path_regex": f"{self.path_regex}(?#{tag})",
            "status": self.status,
            "retry_after": self.retry_after,
            "delay_seconds": self.delay_seconds,
            "times": self.times,
            "reset": self.reset,
        }


JIRA_TIMEOUT_SECONDS = 8.0
"""The jira-writer's and notifier's provider timeout in chaos runs (see harness.PRODUCT_ENV)."""

PROVIDER_FAULTS = (
    ProviderFault("stt-500", "openai", "POST", r"/audio/transcriptions$", status=500, times=2),
    ProviderFault("stt-slow", "openai", "POST", r"/audio/transcriptions$", delay_seconds=3.0, times=4),
    ProviderFault("llm-429-retry-after", "openai", "POST", r"/chat/completions$", 429, 2.0, times=3),
    ProviderFault("llm-429-bare", "openai", "POST", r"/chat/completions$", status=429, times=2),
    ProviderFault("llm-503", "openai", "POST", r"/chat/completions$", status=503, times=2),
    ProviderFault("llm-slow", "openai", "POST", r"/chat/completions$", delay_seconds=4.0, times=4),
    ProviderFault("jira-create-503", "jira", "POST", JIRA_CREATE, status=503, times=2),
    ProviderFault("jira-create-429", "jira", "POST", JIRA_CREATE, 429, 3.0, times=2),
    # Jira answers after the writer gave up (its timeout): the request exists, the writer does
    # not know it; the next attempt must find it rather than create a second one.
    ProviderFault(
        "jira-create-timeout", "jira", "POST", JIRA_CREATE, delay_seconds=JIRA_TIMEOUT_SECONDS + 3, times=1
    ),
    ProviderFault("jira-slow", "jira", "*", r"^/rest/", delay_seconds=2.5, times=8),
    ProviderFault("jira-comment-500", "jira", "POST", r"/comment$", status=500, times=1),
    ProviderFault("jira-property-502", "jira", "PUT", r"/properties/", status=502, times=1),
    ProviderFault("sms-429-retry-after", "twilio", "POST", SMS_SEND, 429, 1.0, times=2),
    ProviderFault("sms-500", "twilio", "POST", SMS_SEND, status=500, times=1),
    ProviderFault("media-503", "twilio", "GET", r"/Recordings/", status=503, times=2),
    # Connection resets (a provider's load balancer dropping the connection): no HTTP answer at all.
    ProviderFault("stt-reset", "openai", "POST", r"/audio/transcriptions$", times=2, reset=True),
    ProviderFault("llm-reset", "openai", "POST", r"/chat/completions$", times=2, reset=True),
    ProviderFault("jira-create-reset", "jira", "POST", JIRA_CREATE, times=1, reset=True),
    ProviderFault("jira-reset", "jira", "*", r"^/rest/", times=3, reset=True),
    ProviderFault("sms-reset", "twilio", "POST", SMS_SEND, times=1, reset=True),
    ProviderFault("media-reset", "twilio", "GET", r"/Recordings/", times=1, reset=True),
)


# -- the schedule ----------------------------------------------------------------------------------
KINDS = (
    "kill",  # SIGKILL one process, restart it after the pause
    "kill-in-jira-create",  # SIGKILL every jira-writer while a create is in flight at Jira
    "kill-in-sms-send",  # SIGKILL every notifier while an SMS send is in flight at Twilio
    "sigterm",  # SIGTERM one consumer replica under load (graceful hand-back), restart later
    "broker-restart",  # stop the broker (SIGTERM, or SIGKILL when hard), pause, start on its data
    "config-api-restart",  # SIGTERM config-api, pause, start
    "rolling-restart",  # every product process in turn: SIGTERM, start, wait until ready
    "kill-before-commit",  # SIGKILL a consumer replica between a handler's success and its commit
    "rolling-upgrade",  # as rolling-restart, into a producer version with a new optional field
    "provider",  # a stand-in fault (5xx, 429 with or without Retry-After, slow, timeout, reset)
    "poison",  # a malformed record on a consumer group's input topic: a deliberate dead letter
)


@dataclass(frozen=True)
class Fault:
    at: float
    """Seconds after the first call's arrival."""
    kind: str
    target: str = ""
    """A process name, a service (aimed kills), a consumer service (poison) or ''."""
    pause: float = 0.0
    """Seconds between the stop and the start again."""
    hard: bool = False
    provider: ProviderFault | None = None

    def describe(self) -> str:
        what = self.provider.label if self.provider else self.target
        extra = f" pause {self.pause:.1f}s" if self.pause else ""
        return f"t+{self.at:6.1f}s {self.kind}{' (hard)' if self.hard else ''} {what}{extra}".rstrip()


@dataclass(frozen=True)
class CallPlan:
    index: int
    at: float
    """Seconds after the traffic starts when the caller rings."""
    caller: str
    transcript: str
    tone_seconds: float
    tone_frequency: float
    duplicate_voice: bool = False
    """Twilio sends the incoming-call webhook twice."""
    duplicate_recordings: tuple[float, ...] = ()
    """Extra deliveries of the completed recording callback, seconds after the first."""
    out_of_order: bool = False
    """Record action and call status before the recording callback; in-progress after it."""
    opted_out: bool = False
    """The caller opted out of SMS at Twilio (21610): no SMS may reach them."""
    sms_line: bool = True
    """False: the call is to ``QUIET_LINE``, whose SMS is off: no SMS may reach the caller."""

    @property
    def line(self) -> str:
        return SUPPORT_LINE if self.sms_line else QUIET_LINE

    @property
    def expects_sms(self) -> bool:
        return self.sms_line and not self.opted_out


@dataclass(frozen=True)
class Plan:
    seed: int
    size: Size
    calls: tuple[CallPlan, ...]
    faults: tuple[Fault, ...]
    notes: tuple[str, ...] = field(default=())

    def describe(self) -> str:
        spared = [n.split(": ", 1)[1] for n in self.notes if n.startswith("spared: ")]
        lines = [
            f"CHAOS_SEED={self.seed} CHAOS_SIZE={self.size.name} CHAOS_CALLS={self.size.calls}"
            + (f" CHAOS_SPARE={spared[0]}" if spared else "")
        ]
        lines += [f"  {fault.describe()}" for fault in self.faults]
        return "\n".join(lines)


TOPICS = SUPPORT_MESSAGES
WORDS = ("amber", "basalt", "cobalt", "dune", "ember", "fjord", "garnet", "harbor", "indigo", "juniper")


def call_marker(index: int) -> str:
    """Words only this call's transcript holds: its comment is found by them."""
    # "over" ends it: without it, call 1's words would be found in call 101's.
    return f"chaos reference {WORDS[index % 10]} {WORDS[index // 10 % 10]} {index} over"


def make_plan(seed: int, size: Size, spare: frozenset[str] = frozenset()) -> Plan:
    """``spare``: fault kinds or services left out of the schedule (``CHAOS_SPARE``), after it
    was drawn, so everything else stays what the seed gives."""
    rng = random.Random(seed)
    calls = _calls(rng, seed, size)  # calls first, then faults: the order the seed is drawn in
    faults = tuple(f for f in _faults(rng, size) if f.kind not in spare and service_of(f.target) not in spare)
    notes = (f"spared: {','.join(sorted(spare))}",) if spare else ()
    return Plan(seed, size, calls, faults, notes)


def spare_from_env() -> frozenset[str]:
    """``CHAOS_SPARE``: comma-separated fault kinds (``broker-restart``) or services
    (``config-api``) to leave out, e.g. to see the rest pass while a known bug is open."""
    return frozenset(part.strip() for part in os.environ.get("CHAOS_SPARE", "").split(",") if part.strip())


def _calls(rng: random.Random, seed: int, size: Size) -> tuple[CallPlan, ...]:
    window = size.traffic_seconds
    arrivals = sorted(rng.uniform(0.0, window * 0.95) for _ in range(size.calls))
    base = seed % 1_000_000 * 10
    calls = []
    for index, at in enumerate(arrivals):
        draw = rng.random()
        duplicates = (
            tuple(sorted(rng.uniform(0.0, 20.0) for _ in range(rng.randint(1, 3))))
            if draw < size.duplicate_share
            else ()
        )
        calls.append(
            CallPlan(
                index=index,
                at=round(at, 3),
                caller=f"+1415{(base + index) % 10_000_000:07d}",
                transcript=f"{rng.choice(TOPICS)} Please note {call_marker(index)}.",
                tone_seconds=1.0 + index % 5 * 0.1,
                tone_frequency=300.0 + index * 2.5,
                duplicate_voice=rng.random() < size.duplicate_share / 2,
                duplicate_recordings=duplicates,
                out_of_order=rng.random() < size.out_of_order_share,
                opted_out=rng.random() < size.opted_out_share,
                sms_line=rng.random() >= size.sms_disabled_share,
            )
        )
    return tuple(calls)


def _faults(rng: random.Random, size: Size) -> tuple[Fault, ...]:
    window = size.traffic_seconds

    def moment(low: float = 0.1, high: float = 0.85) -> float:
        return round(rng.uniform(window * low, window * high), 2)

    def pause() -> float:
        return round(rng.uniform(1.0, 8.0), 2)

    faults: list[Fault] = []
    processes = process_names()
    for _ in range(size.random_kills):
        faults.append(Fault(moment(), "kill", rng.choice(processes), pause()))
    if size.kill_each_service:
        for service in ("ingress", "config-api", *CONSUMERS):
            if service in ("jira-writer", "notifier") and (
                size.kills_in_jira_create or size.kills_in_sms_send
            ):
                continue  # the aimed kills below strike these
            replicas = [p for p in processes if service_of(p) == service]
            faults.append(Fault(moment(), "kill", rng.choice(replicas), pause()))
    for _ in range(size.kills_in_jira_create):
        faults.append(Fault(moment(), "kill-in-jira-create", "jira-writer", pause()))
    for _ in range(size.kills_in_sms_send):
        faults.append(Fault(moment(), "kill-in-sms-send", "notifier", pause()))
    consumer_replicas = [p for p in processes if service_of(p) in CONSUMERS]
    for _ in range(size.sigterms):
        faults.append(Fault(moment(), "sigterm", rng.choice(consumer_replicas), pause()))
    # Broker restarts spread over the window, one per slice, so they never overlap.
    for n in range(size.broker_restarts):
        low = 0.15 + 0.7 * n / size.broker_restarts
        high = 0.15 + 0.7 * (n + 1) / size.broker_restarts - 0.05
        hard = n < size.broker_hard_kills
        faults.append(
            Fault(moment(low, high), "broker-restart", "kafka", round(rng.uniform(2.0, 8.0), 2), hard)
        )
    for _ in range(size.config_api_restarts):
        faults.append(Fault(moment(), "config-api-restart", "config-api", pause()))
    for _ in range(size.rolling_restarts):
        faults.append(Fault(moment(0.2, 0.6), "rolling-restart"))
    for _ in range(size.rolling_upgrades):
        faults.append(Fault(moment(0.1, 0.3), "rolling-upgrade"))
    for n in range(size.kills_before_commit):
        # Each consumer once when there are enough of them, else drawn.
        every = size.kills_before_commit >= len(CONSUMERS) and n < len(CONSUMERS)
        service = CONSUMERS[n] if every else rng.choice(CONSUMERS)
        faults.append(Fault(moment(), "kill-before-commit", service, pause()))
    menu = list(PROVIDER_FAULTS)
    rng.shuffle(menu)
    for n in range(size.provider_faults):
        faults.append(Fault(moment(0.05, 0.9), "provider", provider=menu[n % len(menu)]))
    for service in CONSUMERS:
        for _ in range(size.poison_per_group):
            faults.append(Fault(moment(0.05, 0.9), "poison", service))
    return tuple(sorted(faults, key=lambda f: f.at))
