"""The cost ledger: lifetime totals that stay right across restarts and stale usage caches."""

from __future__ import annotations

import logging

import pytest
from convergence import usage_differences
from helpers import wait_for

import ocnb
from ocnb.demo import DemoGateway


def spent(fleet: ocnb.Fleet) -> float:
    return float(fleet.agents()["cost_total"].sum())


def test_a_usage_answer_from_a_refreshing_cache_is_asked_for_again() -> None:
    """Right after a restart a gateway may answer `sessions.usage` from a cache that misses
    the runs that ended meanwhile; taken as the baseline, their cost would be lost."""
    gateway = DemoGateway(seed=5, speed=20, run_rate=0.5, churn=False)
    with gateway, ocnb.connect(gateway.url, gateway.token, name="gw") as fleet:
        client = fleet.clients["gw"]
        gateway.stale_usage(answers=2)  # the cache as it is now: what ends next is missing
        before = spent(fleet)
        fleet.wait_until(lambda f: spent(f) > before + 0.01, 30)
        gateway.restart(downtime=0.2)
        wait_for(lambda: client.stats.reconnects >= 1 and client.status == "live", 30)
        gateway.pause()
        wait_for(lambda: fleet.settled, 30, "the usage asked for again")
        fleet.catch_up()
        truth = sum(session.lifetime_cost for session in gateway.world.sessions.values())
        assert spent(fleet) == pytest.approx(truth)
        assert gateway.methods.stale_usage is None  # both stale answers went to ocnb
        assert not usage_differences(fleet, client, "gw")


def test_a_cache_that_never_gets_fresh_is_taken_with_a_warning(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("ocnb.feed.USAGE_RETRY_DELAYS", (0.05, 0.05))
    gateway = DemoGateway(seed=5, run_rate=0, churn=False)
    gateway.start()
    gateway.stale_usage(answers=100)
    with (
        gateway,
        caplog.at_level(logging.WARNING, logger="ocnb"),
        ocnb.connect(gateway.url, gateway.token, name="gw") as fleet,
    ):
        wait_for(lambda: fleet.settled, 10, "the usage follow-up")
        fleet.catch_up()
        held = fleet.sql("SELECT count(*) AS n FROM session_usage")["n"][0]
        assert held == len(fleet.sessions())  # the last answer is taken: better than none
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("sessions.usage still refreshing" in line for line in warnings)
