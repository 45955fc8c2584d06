"""Time travel: `fleet_at(fleet, t)` rebuilds exactly the state the live store had at t."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from support.helpers import wait_for
from support.targets import Target
from test_fleet import runs_finished

import ocnb
from ocnb import Fleet, FleetStore, checkpoints
from ocnb.analysis import fleet_at
from ocnb.demo_gateway import DemoGateway
from ocnb.ingest import Ingestor
from ocnb.times import as_utc


def snapshot(fleet: Fleet) -> dict[str, pd.DataFrame]:
    """Everything a user reads about the fleet's state, in a stable order."""
    return {
        "sessions": fleet.sessions(deleted=True).sort_values(["gateway", "session_key"]),
        "agents": fleet.agents(),
        "runs": fleet.runs().sort_values(["gateway", "run_id"]),
        "presence": fleet.sql("SELECT * FROM presence ORDER BY gateway, instance_id"),
        "spend": fleet.sql("SELECT * FROM spend ORDER BY ALL"),
    }


def assert_same(ours: dict[str, pd.DataFrame], theirs: dict[str, pd.DataFrame]) -> None:
    for name, frame in ours.items():
        pd.testing.assert_frame_equal(
            frame.reset_index(drop=True), theirs[name].reset_index(drop=True), obj=name
        )


def quiet_cut(gateway: DemoGateway, fleet: Fleet) -> int:
    """Pause the scenario, make sure all it sent is stored, and return a moment (ms) that
    lies after everything stored so far and before anything still to come."""
    gateway.pause()
    fleet.call("health")  # the answer comes after every event sent before it
    fleet.store.flush()
    cut = int(time.time() * 1000)
    wait_for(lambda: int(time.time() * 1000) > cut, 1, "the clock to pass the cut")
    return cut


LAST_INPUT = """
SELECT max(epoch_ms(received_at)) AS ms FROM (
    SELECT received_at FROM events UNION ALL SELECT received_at FROM sync_log
)
"""


def capture(fleet: Fleet) -> tuple[int, dict[str, pd.DataFrame]]:
    """The state and the millisecond of the last input it includes, read in one transaction.
    Read again if an input of that same millisecond was stored after the read."""
    while True:
        cursor = fleet.store.cursor()  # fleet.sql from this thread reads through it
        cursor.execute("BEGIN TRANSACTION")
        try:
            frames = snapshot(fleet)
            last = int(fleet.sql(LAST_INPUT).iloc[0]["ms"])
            inputs = len(fleet_inputs_until(fleet, last))
        finally:
            cursor.execute("COMMIT")
        wait_for(lambda ms=last: int(time.time() * 1000) > ms, 1, "the clock to pass the capture")
        fleet.store.flush()
        if len(fleet_inputs_until(fleet, last)) == inputs:
            return last, frames


def fleet_inputs_until(fleet: Fleet, ms: int) -> pd.DataFrame:
    return fleet.sql(
        "SELECT ordinal FROM events WHERE epoch_ms(received_at) <= $ms "
        "UNION ALL SELECT ordinal FROM sync_log WHERE epoch_ms(received_at) <= $ms",
        ms=ms,
    )


# The default checkpoints (never reached by these small tests) and a checkpoint every few inputs.
CHECKPOINTS = pytest.mark.parametrize(
    "every", [checkpoints.EVERY, 7], ids=["replay", "checkpoints"]
)


@CHECKPOINTS
def test_fleet_at_equals_the_live_state_captured_at_that_moment(every: int) -> None:
    gateway = DemoGateway(seed=11, speed=10, run_rate=0.5, churn=False)
    store = FleetStore(checkpoint_every=every)
    with gateway, ocnb.connect(gateway.url, gateway.token, name="demo", store=store) as fleet:
        fleet.wait_until(
            lambda f: (f.runs()["status"] != "running").sum() >= 3 and checkpointed(f, every), 30
        )
        cut = quiet_cut(gateway, fleet)
        then = snapshot(fleet)
        gateway.resume()
        runs_then = len(then["runs"])
        fleet.wait_until(lambda f: len(f.runs()) >= runs_then + 3, 30)
        with fleet_at(fleet, cut) as past:
            assert_same(snapshot(past), then)
            assert len(past.events()) < len(fleet.events())
        assert (checkpoints_before(fleet, cut) >= 2) == (every == 7)


@CHECKPOINTS
def test_fleet_at_now_rebuilds_the_whole_store_across_a_restart(every: int) -> None:
    gateway = DemoGateway(seed=12, speed=10, run_rate=0.5, churn=True)
    store = FleetStore(checkpoint_every=every)
    with gateway, ocnb.connect(gateway.url, gateway.token, name="demo", store=store) as fleet:
        client = fleet.clients["demo"]
        fleet.wait_until(lambda f: len(f.runs()) >= 3, 30)
        gateway.restart(downtime=0.2)
        wait_for(lambda: client.stats.reconnects >= 1 and client.status == "live", 30)
        fleet.wait_until(lambda f: checkpointed(f, every), 30)
        cut = quiet_cut(gateway, fleet)
        with fleet_at(fleet, cut) as past:
            assert_same(snapshot(past), snapshot(fleet))
        assert (checkpoints_before(fleet, cut) >= 2) == (every == 7)


def test_checkpoints_of_a_reopened_file_store_cover_what_came_before(tmp_path: Path) -> None:
    path = tmp_path / "fleet.duckdb"
    gateway = DemoGateway(seed=13, speed=10, run_rate=0.5, churn=True)
    with gateway:
        store = FleetStore(path, checkpoint_every=7)
        with ocnb.connect(gateway.url, gateway.token, name="demo", store=store) as fleet:
            fleet.wait_until(lambda f: len(f.runs()) >= 3, 30)
            before = checkpoints_before(fleet, time.time() * 1000)
        store = FleetStore(path, checkpoint_every=7)
        with ocnb.connect(gateway.url, gateway.token, name="demo", store=store) as fleet:
            fleet.wait_until(lambda f: len(f.runs()) >= 6, 30)
            cut = quiet_cut(gateway, fleet)
            with fleet_at(fleet, cut) as past:
                assert_same(snapshot(past), snapshot(fleet))
            assert checkpoints_before(fleet, cut) > before > 0


def sync_input(store: FleetStore) -> Callable[[str, dict[str, Any], int], None]:
    """`ingest(kind, payload, received_at)`: one sync input of gateway `gw`, written at once."""
    ingestor = Ingestor("gw")

    def ingest(kind: str, payload: dict[str, Any], received_at: int) -> None:
        store.submit(ingestor.synced(kind, payload, received_at=received_at))
        store.flush()

    return ingest


def page(updated_at: int, *keys: str) -> dict[str, Any]:
    return {"sessions": [{"key": key, "sessionId": key, "updatedAt": updated_at} for key in keys]}


def test_a_checkpoint_after_a_resync_holds_the_sessions_as_rebased() -> None:
    """A gateway back from a restart may report a session older than it last did: the re-sync
    rebases every session row of the gateway, and a checkpoint taken after it holds them so."""
    store = FleetStore(checkpoint_every=2)
    ingest, start = sync_input(store), int(time.time() * 1000) - 60_000
    with Fleet(store) as fleet:
        ingest("sessions.list", page(start, "agent:a:s1"), start)
        ingest("status", {"status": "live"}, start + 1)  # the first checkpoint
        ingest("sessions.resync", {}, start + 2)
        ingest("status", {"status": "live"}, start + 3)  # the second, after the rebase
        ingest("sessions.list", page(start - 1_000, "agent:a:s1"), start + 4)
        assert checkpoints_before(fleet, start + 3) == 2
        assert fleet.sessions()["updated_at"].tolist() == [as_utc(start - 1_000)]
        with fleet_at(fleet, start + 5) as past:
            assert_same(snapshot(past), snapshot(fleet))


def test_a_checkpoint_after_a_sweep_holds_the_sessions_it_removed() -> None:
    store = FleetStore(checkpoint_every=2)
    ingest, start = sync_input(store), int(time.time() * 1000) - 60_000
    with Fleet(store) as fleet:
        ingest("sessions.list", page(start, "agent:a:s1", "agent:a:s2"), start)
        ingest("status", {"status": "live"}, start + 1)  # the first checkpoint
        ingest("sessions.swept", {"keep": ["agent:a:s1"]}, start + 2)
        ingest("status", {"status": "live"}, start + 3)  # the second, after the sweep
        assert checkpoints_before(fleet, start + 3) == 2
        assert fleet.sessions()["session_key"].tolist() == ["agent:a:s1"]
        with fleet_at(fleet, start + 4) as past:
            assert_same(snapshot(past), snapshot(fleet))


def checkpointed(fleet: Fleet, every: int) -> bool:
    """Whether a store with a checkpoint every 7 inputs holds two yet, so that `fleet_at`
    starts from a later one than the first (how many it takes depends on the writer's batches,
    each of which takes at most one); a store with the default holds fewer, and is ready."""
    return every != 7 or checkpoints_before(fleet, time.time() * 1000) >= 2


def checkpoints_before(fleet: Fleet, ms: float) -> int:
    """How many checkpoints the store holds of inputs up to `ms`."""
    query = "SELECT count(*) AS n FROM checkpoints.taken WHERE epoch_ms(received_at) <= $ms"
    return int(fleet.sql(query, ms=int(ms))["n"].iloc[0])


def test_fleet_at_now_rebuilds_the_store_on_every_target(target: Target) -> None:
    fast, _, broken = target.agent_roles()
    with ocnb.connect(target.url, target.token, name="gw") as fleet, target.driver() as driver:
        run_ids = [driver.run(f"agent:{fast}:history-ok"), driver.run(f"agent:{broken}:history-no")]
        fleet.wait_until(lambda f: runs_finished(f, run_ids), 90)
        cut, then = capture(fleet)  # the gateway may still be sending: no quiet moment here
        with fleet_at(fleet, cut) as past:
            assert_same(snapshot(past), then)


@pytest.mark.parametrize(
    "when",
    [
        1_795_000_000_123,
        1_795_000_000_123.0,
        np.int64(1_795_000_000_123),
        "2026-11-18T11:06:40.123",
    ],
)
def test_a_moment_in_epoch_ms_from_a_frame_is_read_as_ms(when: object) -> None:
    assert as_utc(when) == pd.Timestamp("2026-11-18T11:06:40.123", tz="UTC")
