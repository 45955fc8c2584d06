"""Demo activity through a chaos proxy: afterwards the store equals the gateway's truth."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from pathlib import Path

import pytest
from support.chaosproxy import ChaosProxy
from support.convergence import differences, usage_differences
from support.helpers import wait_for

import ocnb
from ocnb.demo_gateway import DemoGateway

# CI runs a short form; OCNB_CHAOS_SECONDS=120 is the full one (see the README)
CHAOS_SECONDS = float(os.environ.get("OCNB_CHAOS_SECONDS", "20"))


def rss_mb() -> float:
    status = Path("/proc/self/status").read_text()
    return int(status.split("VmRSS:")[1].split()[0]) / 1024


def footprint(client: ocnb.GatewayClient) -> tuple[int, int, int]:
    """ocnb's threads, the tasks on the client's loop, and calls awaiting an answer."""

    async def tasks() -> int:
        return len(asyncio.all_tasks())

    running = client._loop_thread.run(tasks(), 5)
    threads = sum(thread.name.startswith("ocnb") for thread in threading.enumerate())
    return threads, running, len(client._pending)


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
        started = time.monotonic()
        samples: list[tuple[float, tuple[int, int, int], float]] = []

        def sample_while_chaos_lasts() -> bool:
            now = time.monotonic() - started
            due = not samples or now - samples[-1][0] > 0.25
            if due and client.status == "live":  # threads and tasks settle once live
                samples.append((now, footprint(client), rss_mb()))
            return time.monotonic() - started > CHAOS_SECONDS

        wait_for(sample_while_chaos_lasts, CHAOS_SECONDS + 5, "the chaos to run")
        proxy.calm()
        gateway.pause()  # a still fleet to compare with
        wait_for(lambda: client.status == "live", 60, "the client to be live again")
        fleet.catch_up()
        wait_for(lambda: not differences(fleet, client, "demo"), 60, "sessions and agents")
        wait_for(lambda: not usage_differences(fleet, client, "demo"), 60, "usage totals")
        print(  # the figures the README's reliability section reports (pytest -s)
            f"chaos {CHAOS_SECONDS:g} s: faults {proxy.faults}, reconnects "
            f"{client.stats.reconnects}, seq gaps {client.stats.seq_gaps}, "
            f"events {client.stats.events}, differences 0"
        )
        assert sum(proxy.faults.values()) >= 5, proxy.faults
        assert client.stats.reconnects >= 1
        assert {t.name for t in threading.enumerate()} >= {"ocnb-loop", "ocnb-writer"}
        assert fleet.store.stats.errors == 0
        # flat: the faults left no thread, task or call behind, and memory grew with data only
        early = [sample for sample in samples if sample[0] < CHAOS_SECONDS / 2]
        assert early, "the client was never live in the first half of the chaos"
        threads, tasks, pending = footprint(client)
        assert threads <= max(sample[1][0] for sample in early)
        assert tasks <= max(sample[1][1] for sample in early)
        assert pending == 0
        assert samples[-1][2] - early[-1][2] < 50, "RSS grew by 50 MB during the chaos"
