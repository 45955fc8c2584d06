"""Faults of a real gateway: killed, started late, its token changed. The fleet converges each time.

(SIGTERM and restart mid-run is in `test_fleet`, against every target.)
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.convergence import converged, usage_differences, wait_runs_finished
from support.fakemodel import FakeModelServer
from support.helpers import wait_for
from support.realgateway import AGENTS, V3_VERSION, V4_VERSION, RealGateway

import ocnb
from ocnb import AuthError, Backoff

# Each test starts a real gateway once or twice (20-40 s each on a busy machine): the waits
# below bound each step, this bounds the whole.
pytestmark = [pytest.mark.gateway, pytest.mark.timeout(420)]

FAST, SLOW, _ = (agent_id for agent_id, *_ in AGENTS)
BACKOFF = Backoff(initial=0.25, maximum=2.0, healthy_after=60)


@pytest.fixture(params=[V4_VERSION, V3_VERSION])
def gateway(
    request: pytest.FixtureRequest, fake_models: FakeModelServer, tmp_path: Path
) -> Iterator[RealGateway]:
    """A real gateway of its own, not started yet: each test decides when."""
    gateway = RealGateway(request.param, tmp_path / "openclaw", model_url=fake_models.base_url)
    try:
        yield gateway
    finally:
        gateway.stop()


def started(gateway: RealGateway) -> RealGateway:
    gateway.start()
    gateway.wait_ready()
    return gateway


def test_a_gateway_started_after_the_client_is_waited_for(gateway: RealGateway) -> None:
    with ocnb.connect(gateway.url, gateway.token, name="gw", wait=False, backoff=BACKOFF) as fleet:
        client = fleet.clients["gw"]
        wait_for(lambda: client.stats.attempts >= 2, 30, "attempts on a closed port")
        assert client.status == "connecting"
        assert isinstance(client.last_error, OSError)  # visible while it waits
        with started(gateway).driver() as driver:
            fleet.wait_until_live(120)
            run_id = driver.run(f"agent:{FAST}:late-start")
            wait_runs_finished(fleet, client, [run_id])
        converged(fleet, client, "gw")
        wait_for(lambda: not usage_differences(fleet, client, "gw"), 60, "usage totals")
        assert client.last_error is None


def test_a_gateway_killed_mid_run_and_restarted_converges(gateway: RealGateway) -> None:
    started(gateway)
    with ocnb.connect(gateway.url, gateway.token, name="gw", backoff=BACKOFF) as fleet:
        client = fleet.clients["gw"]
        with gateway.driver() as driver:
            key = f"agent:{SLOW}:killed"
            run_id = driver.run(key)
        fleet.wait_until(lambda f: run_id in set(f.runs()["run_id"]), 30)
        gateway.stop(signal.SIGKILL)  # no shutdown event, no close frame
        wait_for(lambda: client.status != "live", 60, "the client to notice")
        started(gateway)
        wait_for(lambda: client.stats.reconnects >= 1 and client.status == "live", 120)
        with gateway.driver() as driver:
            after = driver.run(f"agent:{FAST}:after-kill")
        wait_runs_finished(fleet, client, [run_id, after])
        converged(fleet, client, "gw")
        wait_for(lambda: not usage_differences(fleet, client, "gw"), 60, "usage totals")
        assert fleet.store.stats.errors == 0


def test_a_changed_token_stops_the_client_with_auth_error_and_no_retry_storm(
    gateway: RealGateway,
) -> None:
    started(gateway)
    with ocnb.connect(gateway.url, gateway.token, name="gw", backoff=BACKOFF) as fleet:
        client = fleet.clients["gw"]
        old_token = gateway.token
        gateway.stop()
        gateway.token = "rotated-" + old_token[::-1]
        started(gateway)
        attempts_when_ready = client.stats.attempts
        supervisor = client._supervisor
        assert supervisor is not None
        wait_for(supervisor.done, 60, "the client to give up")
        assert client.status == "failed"
        assert isinstance(client.last_error, AuthError)
        assert client.last_error.detail_code == "AUTH_TOKEN_MISMATCH"
        assert client.stats.attempts - attempts_when_ready <= 1  # one refusal, then no retry
        assert fleet.status == "failed"
        assert old_token not in repr(fleet) and old_token not in str(client.last_error)
