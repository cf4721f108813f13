"""The schedule itself, without infrastructure: a seed replays it, and each size strikes what it
promises (the ci size: a kill of every service and a broker restart)."""

from __future__ import annotations

import pytest
from chaos_plan import CONSUMERS, SIZES, make_plan, process_names, service_of

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
