"""The cost ledger: lifetime totals that stay right across restarts and stale usage caches."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from support.convergence import usage_differences, wait_runs_finished
from support.fakemodel import FakeModelServer
from support.helpers import wait_for
from support.realgateway import AGENTS, V3_VERSION, V4_VERSION, RealGateway

import ocnb
from ocnb.demo_gateway import DemoGateway

FAST, SLOW, _ = (agent_id for agent_id, *_ in AGENTS)


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


@pytest.fixture(scope="module", params=[V4_VERSION, V3_VERSION])
def fresh_gateway(
    request: pytest.FixtureRequest,
    fake_models: FakeModelServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[RealGateway]:
    """A real gateway with no history: everything it ever spends happens while ocnb watches."""
    home = tmp_path_factory.mktemp("openclaw")
    with RealGateway(request.param, home, model_url=fake_models.base_url) as gateway:
        yield gateway


def seen_spend(fleet: ocnb.Fleet) -> dict[str, float]:
    """Per agent, every message's cost as seen live: what was spent."""
    frame = fleet.sql("SELECT agent_id, sum(cost_usd) AS cost FROM usage GROUP BY 1")
    return {row["agent_id"]: row["cost"] for row in frame.to_dict("records")}


def ledger(fleet: ocnb.Fleet) -> dict[str, float]:
    cards = fleet.agents()
    return {
        row["agent_id"]: row["cost_total"] for row in cards.to_dict("records") if row["cost_total"]
    }


@pytest.mark.gateway
@pytest.mark.timeout(420)
def test_the_ledger_keeps_what_was_spent_across_reset_delete_and_restart(
    fresh_gateway: RealGateway,
) -> None:
    """openclaw issue 20599: the gateway's own usage view forgets deleted sessions; ocnb's
    totals must not, nor lose a reset session's past, nor anything over a restart."""
    gateway = fresh_gateway
    with ocnb.connect(gateway.url, gateway.token, name="gw") as fleet, gateway.driver() as driver:
        client = fleet.clients["gw"]
        for key in (f"agent:{FAST}:ledger", f"agent:{FAST}:ledger", f"agent:{SLOW}:ledger"):
            wait_runs_finished(fleet, client, [driver.run(key)])  # one at a time: a busy
            # session queues a message under another run id
        wait_for(lambda: not usage_differences(fleet, client, "gw"), 90, "usage totals to agree")
        spent_before = seen_spend(fleet)
        assert ledger(fleet) == pytest.approx(spent_before)

        costliest = fleet.sql(
            "SELECT session_key FROM spend GROUP BY 1 ORDER BY sum(cost_usd) DESC LIMIT 1"
        )["session_key"][0]
        driver.call("sessions.reset", {"key": costliest})
        driver.delete_session(costliest)
        fleet.wait_until(
            lambda f: costliest in set(f.sessions(deleted=True).query("deleted")["session_key"]), 30
        )
        gateway.stop()
        gateway.start()
        gateway.wait_ready()
        wait_for(lambda: client.stats.reconnects >= 1 and client.status == "live", 120)
        wait_for(lambda: fleet.settled, 60, "the usage follow-ups")
        fleet.catch_up()
        assert seen_spend(fleet) == pytest.approx(spent_before)
        assert ledger(fleet) == pytest.approx(spent_before)
        assert fleet.sql("SELECT sum(cost_usd) AS c FROM spend")["c"][0] == pytest.approx(
            sum(spent_before.values())
        )
    if gateway.protocol >= 4:  # 2026.9.6 still lists the deleted instance: a fresh store counts it
        with ocnb.connect(gateway.url, gateway.token, name="gw") as fresh:
            wait_for(lambda: fresh.settled, 60, "the usage follow-ups")
            fresh.catch_up()
            assert ledger(fresh) == pytest.approx(spent_before)
