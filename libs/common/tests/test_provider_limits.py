"""Per-(tenant, provider) concurrency slots: the limit holds under contention, None is unlimited,
a changed limit applies to the next acquisitions, a cancelled waiter gives back nothing it did
not take."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from prometheus_client import REGISTRY

from voiceticket_common.provider_limits import PROVIDERS, ProviderLimits, limits


class Peak:
    """Counts the holders of a slot at once."""

    def __init__(self) -> None:
        self.now = 0
        self.peak = 0

    async def hold(self, registry: ProviderLimits, tenant: str, limit: int | None, seconds: float) -> None:
        async with registry.slot(tenant, "jira", limit):
            self.now += 1
            self.peak = max(self.peak, self.now)
            await asyncio.sleep(seconds)
            self.now -= 1


async def test_the_limit_holds_under_contention_and_is_reached() -> None:
    registry, peak = ProviderLimits(), Peak()
    await asyncio.gather(*(peak.hold(registry, "acme", 4, 0.01) for _ in range(60)))
    assert peak.peak == 4
    assert registry.in_use("acme", "jira") == 0 and registry.waiting("acme", "jira") == 0


async def test_tenants_and_providers_have_slots_of_their_own() -> None:
    registry = ProviderLimits()
    async with registry.slot("acme", "jira", 1):
        # acme's one Jira slot is taken; its LLM slot and globex's Jira slot are not
        async with asyncio.timeout(1):
            async with registry.slot("acme", "llm", 1), registry.slot("globex", "jira", 1):
                assert registry.in_use("acme", "jira") == 1
                assert registry.in_use("acme", "llm") == registry.in_use("globex", "jira") == 1


async def test_none_is_unlimited() -> None:
    registry, peak = ProviderLimits(), Peak()
    await asyncio.gather(*(peak.hold(registry, "acme", None, 0.02) for _ in range(50)))
    assert peak.peak == 50


async def test_waiters_are_served_first_come_first_served() -> None:
    registry, order = ProviderLimits(), []
    gate = asyncio.Event()

    async def holder() -> None:
        async with registry.slot("acme", "sms", 1):
            await gate.wait()

    async def waiter(n: int) -> None:
        async with registry.slot("acme", "sms", 1):
            order.append(n)

    first = asyncio.create_task(holder())
    await asyncio.sleep(0)
    waiters = [asyncio.create_task(waiter(n)) for n in range(5)]
    await asyncio.sleep(0.01)
    assert registry.waiting("acme", "sms") == 5
    gate.set()
    await asyncio.gather(first, *waiters)
    assert order == [0, 1, 2, 3, 4]


async def test_a_raised_limit_lets_waiters_in_at_once() -> None:
    registry, peak = ProviderLimits(), Peak()
    slow = [asyncio.create_task(peak.hold(registry, "acme", 2, 0.3)) for _ in range(6)]
    await asyncio.sleep(0.05)
    assert peak.now == 2 and registry.waiting("acme", "jira") == 4
    # config-api raised the tenant's limit: the next acquisition brings the new value
    late = asyncio.create_task(peak.hold(registry, "acme", 6, 0.3))
    await asyncio.sleep(0.05)
    assert peak.now == 6  # the four waiters got in, and so did the newcomer... up to six
    assert registry.waiting("acme", "jira") == 1
    await asyncio.gather(*slow, late)
    assert peak.peak == 6


async def test_a_lowered_limit_admits_no_one_until_enough_slots_are_back() -> None:
    registry = ProviderLimits()
    release = asyncio.Event()
    entered: list[int] = []

    async def hold(n: int, limit: int) -> None:
        async with registry.slot("acme", "llm", limit):
            entered.append(n)
            await release.wait()

    held = [asyncio.create_task(hold(n, 4)) for n in range(4)]
    await asyncio.sleep(0.01)
    lowered = asyncio.create_task(hold(99, 2))
    await asyncio.sleep(0.01)
    assert registry.in_use("acme", "llm") == 4  # held slots are not revoked
    assert 99 not in entered and registry.waiting("acme", "llm") == 1
    release.set()
    await asyncio.gather(*held, lowered)
    assert entered[-1] == 99


async def test_a_cancelled_waiter_releases_nothing_it_did_not_take() -> None:
    registry = ProviderLimits()
    release = asyncio.Event()

    async def hold() -> None:
        async with registry.slot("acme", "jira", 2):
            await release.wait()

    holders = [asyncio.create_task(hold()) for _ in range(2)]
    waiters = [asyncio.create_task(hold()) for _ in range(3)]
    await asyncio.sleep(0.01)
    assert registry.in_use("acme", "jira") == 2 and registry.waiting("acme", "jira") == 3
    for task in waiters:
        task.cancel()
    await asyncio.gather(*waiters, return_exceptions=True)
    # the two holders still hold their slots: a cancelled waiter gave none of theirs away
    assert registry.in_use("acme", "jira") == 2 and registry.waiting("acme", "jira") == 0
    third = asyncio.create_task(hold())
    await asyncio.sleep(0.01)
    assert registry.in_use("acme", "jira") == 2 and registry.waiting("acme", "jira") == 1
    release.set()
    await asyncio.gather(*holders, third)
    assert registry.in_use("acme", "jira") == 0


async def test_a_waiter_cancelled_after_being_granted_gives_the_slot_back() -> None:
    registry = ProviderLimits()
    entered = False

    async def wait_for_it() -> None:
        nonlocal entered
        async with registry.slot("acme", "jira", 1):
            entered = True

    async with contextlib.AsyncExitStack() as held:
        await held.enter_async_context(registry.slot("acme", "jira", 1))
        waiter = asyncio.create_task(wait_for_it())
        await asyncio.sleep(0.01)
        assert registry.waiting("acme", "jira") == 1
    # Leaving the block granted the slot to the waiter, which has not run yet, and is cancelled now.
    assert registry.in_use("acme", "jira") == 1
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert not entered
    assert registry.in_use("acme", "jira") == 0 and registry.waiting("acme", "jira") == 0
    async with asyncio.timeout(1), registry.slot("acme", "jira", 1):
        pass


async def test_a_failing_holder_gives_its_slot_back() -> None:
    registry = ProviderLimits()
    with pytest.raises(RuntimeError):
        async with registry.slot("acme", "sms", 1):
            raise RuntimeError("provider said no")
    async with asyncio.timeout(1), registry.slot("acme", "sms", 1):
        assert registry.in_use("acme", "sms") == 1


@pytest.mark.parametrize("limit", [0, -1])
async def test_a_limit_below_one_is_refused(limit: int) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        async with ProviderLimits().slot("acme", "llm", limit):
            pass


async def test_slots_and_waits_are_metrics_by_provider() -> None:
    assert set(PROVIDERS) == {"speech_to_text", "llm", "jira", "sms"}

    def sample(name: str, **labels: str) -> float:
        return REGISTRY.get_sample_value(name, labels) or 0.0

    waits = sample("voiceticket_provider_slot_wait_seconds_count", provider="speech_to_text")
    release = asyncio.Event()

    async def hold() -> None:
        async with limits.slot("metrics-tenant", "speech_to_text", 1):
            await release.wait()

    tasks = [asyncio.create_task(hold()) for _ in range(3)]
    await asyncio.sleep(0.01)
    labels = {"provider": "speech_to_text", "tenant": "metrics-tenant"}
    assert sample("voiceticket_provider_slots_in_use", **labels) == 1
    assert sample("voiceticket_provider_slots_waiting", **labels) == 2
    release.set()
    await asyncio.gather(*tasks)
    assert sample("voiceticket_provider_slots_in_use", **labels) == 0
    assert sample("voiceticket_provider_slots_waiting", **labels) == 0
    assert sample("voiceticket_provider_slot_wait_seconds_count", provider="speech_to_text") == waits + 3
