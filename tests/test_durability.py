"""A file store killed with SIGKILL at random moments of a live ingest always reopens, never
loses what it had committed, and the next connect reconciles it with the gateway."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from support.convergence import differences
from support.helpers import wait_for

import ocnb
from ocnb.auth import TOKEN_VARIABLE
from ocnb.demo_gateway import DemoGateway
from ocnb.store import FleetStore

KILLS = 20
FOLLOWER = textwrap.dedent(
    """
    import sys, time
    import ocnb
    fleet = ocnb.connect(sys.argv[1], store=sys.argv[2], name="demo")
    print("live", flush=True)
    while True:
        time.sleep(1)
    """
)


def logged_events(path: Path) -> int:
    store = FleetStore(path)
    try:
        return int(store.arrow("SELECT count(*) AS n FROM events").to_pylist()[0]["n"])
    finally:
        store.close()


@pytest.mark.timeout(300)  # twenty processes start, connect and die
def test_kill_9_at_random_moments_loses_nothing_committed(tmp_path: Path) -> None:
    path = tmp_path / "fleet.duckdb"
    rng = random.Random(10)
    gateway = DemoGateway(seed=8, speed=20, run_rate=1.0)
    with gateway:
        env = {**os.environ, TOKEN_VARIABLE: gateway.token}
        seen = 0
        for _ in range(KILLS):
            follower = subprocess.Popen(
                [sys.executable, "-c", FOLLOWER, gateway.url, str(path)],
                stdout=subprocess.PIPE,
                text=True,
                env=env,
            )
            assert follower.stdout is not None
            assert follower.stdout.readline().strip() == "live"
            time.sleep(rng.uniform(0.0, 0.6))  # a seeded, random moment of the live ingest
            follower.send_signal(signal.SIGKILL)
            follower.wait(30)
            follower.stdout.close()
            now = logged_events(path)  # reopens after every kill
            assert now >= seen
            seen = now
        assert seen > 0
        with ocnb.connect(gateway.url, gateway.token, store=path, name="demo") as fleet:
            client = fleet.clients["demo"]
            wait_for(lambda: not differences(fleet, client, "demo"), 60, "reconciliation")
