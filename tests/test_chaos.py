"""Demo activity through a chaos proxy: afterwards the store equals the gateway's truth."""

from __future__ import annotations

import os
import threading
import time

import pytest
from chaosproxy import ChaosProxy
from convergence import differences, usage_differences
from helpers import wait_for

import ocnb
from ocnb.demo import DemoGateway

# CI runs a short form; OCNB_CHAOS_SECONDS=120 is the full one (see the README)
CHAOS_SECONDS = float(os.environ.get("OCNB_CHAOS_SECONDS", "20"))


@pytest.mark.timeout(CHAOS_SECONDS + 240)
def test_after_chaos_the_store_converges_and_nothing_died() -> None:
    gateway = DemoGateway(seed=21, speed=10, run_rate=0.5, tick_interval=1.0)
    with (
        gateway,
        ChaosProxy(gateway.port, seed=21, stall_seconds=3.0) as proxy,
        ocnb.connect(
            proxy.url, gateway.token, name="demo", backoff=ocnb.Backoff(maximum=2.0)
        ) as fleet,
    ):
        client = fleet.clients["demo"]
        deadline = time.monotonic() + CHAOS_SECONDS
        wait_for(lambda: time.monotonic() > deadline, CHAOS_SECONDS + 5, "the chaos to run")
        proxy.calm()
        gateway.pause()  # a still fleet to compare with
        wait_for(lambda: client.status == "live", 60, "the client to be live again")
        fleet.catch_up()
        wait_for(lambda: not differences(fleet, client, "demo"), 60, "sessions and agents")
        wait_for(lambda: not usage_differences(fleet, client, "demo"), 60, "usage totals")
        assert sum(proxy.faults.values()) >= 5, proxy.faults
        assert client.stats.reconnects >= 1
        assert {t.name for t in threading.enumerate()} >= {"ocnb-loop", "ocnb-writer"}
        assert fleet.store.stats.errors == 0
