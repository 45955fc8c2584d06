"""The Fleet: the store converges to the gateway's truth, and stays usable from the notebook."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from support.convergence import converged, runs_finished, usage_differences
from support.helpers import SlowStore, wait_for
from support.targets import Target

import ocnb
from ocnb import Fleet
from ocnb.demo_gateway import DemoGateway
from ocnb.fleet import _wait_for_feed
from ocnb.ops import Append


def test_after_activity_and_a_restart_the_store_equals_the_gateway(target: Target) -> None:
    fast, slow, broken = target.agent_roles()
    with ocnb.connect(target.url, target.token, name="gw") as fleet, target.driver() as driver:
        client = fleet.clients["gw"]
        run_ids = [driver.run(f"agent:{fast}:conv-ok"), driver.run(f"agent:{broken}:conv-fail")]
        slow_key = f"agent:{slow}:conv-abort"
        slow_run = driver.run(slow_key)
        driver.abort(slow_key, slow_run)
        label = f"conv-{uuid.uuid4().hex[:8]}"  # labels are unique on a gateway
        driver.create_session(fast, f"agent:{fast}:conv-scratch", label=label)
        driver.create_session(fast, f"agent:{fast}:conv-gone")
        driver.delete_session(f"agent:{fast}:conv-gone")
        if target.protocol >= 4:
            driver.delete_agent(driver.create_agent("Conv Temp"))

        fleet.wait_until(lambda f: runs_finished(f, run_ids), 90)
        driver.run(f"agent:{slow}:conv-interrupted")  # still streaming when the gateway goes
        target.restart()
        wait_for(lambda: client.stats.reconnects >= 1 and client.status == "live", 120)
        after_restart = [driver.run(f"agent:{fast}:conv-after")]
        fleet.wait_until(lambda f: runs_finished(f, after_restart), 90)
        converged(fleet, client, "gw")
        deleted = fleet.sessions(deleted=True)
        assert deleted.query("session_key.str.endswith(':conv-gone')", engine="python")[
            "deleted"
        ].all()
        wait_for(lambda: not usage_differences(fleet, client, "gw"), 60, "usage totals to agree")


def test_events_during_a_slow_initial_sync_are_kept_and_win() -> None:
    """Regression: live rows that arrived while sessions.list was in flight were overwritten."""
    gateway = DemoGateway(seed=4, speed=20, run_rate=0.5, churn=True)
    gateway.slow_method("sessions.list", 1.0)
    with gateway, ocnb.connect(gateway.url, gateway.token, name="demo") as fleet:
        client = fleet.clients["demo"]
        gateway.pause()  # a step under way may still publish: wait, never assume it is done

        def every_event_logged() -> bool:
            logged = fleet.catch_up().sql("SELECT count(*) AS n FROM events").iloc[0]["n"]
            return bool(logged == client.stats.events > 0)

        wait_for(every_event_logged, 30, "every event dispatched to be in the log")
        converged(fleet, client, "demo", timeout=30)


def test_frames_have_proper_dtypes_and_filters(demo_fleet: Fleet) -> None:
    sessions = demo_fleet.sessions()
    assert str(sessions["updated_at"].dtype).startswith("datetime64")
    assert sessions["updated_at"].dt.tz is not None
    agent = sessions["agent_id"].iloc[0]
    assert set(demo_fleet.sessions(agent=agent)["agent_id"]) == {agent}
    assert demo_fleet.sessions(active=True)["has_active_run"].fillna(False).all()
    agents = demo_fleet.agents()
    assert set(agents["status"]) <= {"working", "idle", "error", "offline"}
    assert agents["sessions"].sum() == len(sessions)
    assert set(demo_fleet.events(kinds=["agent"])["event"]) <= {"agent"}
    assert len(demo_fleet.events(limit=3)) == 3


def test_sql_takes_named_parameters_and_arrow(demo_fleet: Fleet) -> None:
    frame = demo_fleet.sql(
        "SELECT count(*) AS n FROM sessions WHERE agent_id = $agent AND NOT deleted", agent="atlas"
    )
    assert frame["n"].iloc[0] == len(demo_fleet.sessions(agent="atlas"))
    table = demo_fleet.arrow("SELECT * FROM agents WHERE NOT removed")
    assert table.num_rows == len(demo_fleet.agents())


def test_on_change_fires_after_the_store_changes(demo_fleet: Fleet) -> None:
    seen = threading.Event()
    demo_fleet.on_change(lambda fleet: seen.set())
    wait_for(seen.is_set, 30, "a change notification")


def test_reads_from_the_kernel_thread_never_error_while_ingesting(demo_fleet: Fleet) -> None:
    for _ in range(100):
        demo_fleet.agents()
        demo_fleet.sessions()
    assert demo_fleet.store.stats.errors == 0


def test_export_parquet_writes_every_table(demo_fleet: Fleet, tmp_path: Path) -> None:
    files = demo_fleet.export_parquet(tmp_path)
    assert {f.stem for f in files} >= {"sessions", "events", "agents"}
    import pyarrow.parquet as pq

    assert pq.read_table(tmp_path / "sessions.parquet").num_rows >= 60


def test_repr_and_html_show_state_and_never_the_token(demo_fleet: Fleet) -> None:
    token = demo_fleet.demo_gateway.token
    gateway = demo_fleet.demo_gateway
    assert gateway is not None
    gateway.pause()  # its roster churns: hold it still while we compare
    agents = len(demo_fleet.wait_until(lambda f: f.catch_up().settled).agents())
    text, page = repr(demo_fleet), demo_fleet._repr_html_()
    assert "live" in text and "live" in page and f"{agents} agents" in page
    assert token not in text and token not in page


def test_two_gateways_share_one_store() -> None:
    with (
        DemoGateway(seed=1, run_rate=0) as one,
        DemoGateway(seed=2, agents=3, sessions=5, run_rate=0) as two,
    ):
        fleet = ocnb.connect(one.url, one.token, name="one")
        with fleet:
            fleet.add_gateway(two.url, two.token, name="two")
            fleet.wait_until_live(30)
            counts = fleet.sql("SELECT gateway, count(*) AS n FROM sessions GROUP BY 1 ORDER BY 1")
            assert counts.to_dict("records") == [
                {"gateway": "one", "n": 60},
                {"gateway": "two", "n": 5},
            ]
            with pytest.raises(ValueError, match="name the gateway"):
                fleet.call("agents.list")
            assert len(fleet.call("agents.list", gateway="two")["agents"]) == 3


def test_spend_covers_every_session_not_the_gateways_default_fifty() -> None:
    gateway = DemoGateway(seed=6, sessions=120, run_rate=0, churn=False)
    with gateway, ocnb.connect(gateway.url, gateway.token, name="gw") as fleet:
        fleet.store.flush()
        baseline = fleet.sql("SELECT sum(total_tokens)::BIGINT AS tokens, count(*) AS n FROM spend")
        world = gateway.world.sessions.values()
        assert baseline.to_dict("records") == [
            {"tokens": sum(s.lifetime_input + s.lifetime_output for s in world), "n": 120}
        ]


def test_a_durable_store_reopens_and_keeps_appending(tmp_path: Path) -> None:
    path = tmp_path / "fleet.duckdb"
    with ocnb.demo(store=path, seed=3, run_rate=0) as fleet:
        first = fleet.sql("SELECT count(*) AS n FROM sessions").iloc[0]["n"]
    with ocnb.demo(store=path, seed=3, run_rate=0) as again:
        again.store.flush()
        assert again.sql("SELECT count(*) AS n FROM sessions").iloc[0]["n"] >= first


def test_a_large_sync_shows_a_progress_bar(capsys: pytest.CaptureFixture[str]) -> None:
    gateway = DemoGateway(sessions=3_000, run_rate=0, churn=False)
    gateway.slow_method("sessions.list", 0.3)
    with gateway, ocnb.connect(gateway.url, gateway.token, name="big") as fleet:
        assert len(fleet.sessions()) == 3_000
    assert "sync big" in capsys.readouterr().err


def test_a_wrong_token_fails_connect_clearly() -> None:
    with DemoGateway(run_rate=0) as gateway, pytest.raises(ocnb.AuthError):
        ocnb.connect(gateway.url, "wrong-token", timeout=10)


def test_ocnb_demo_is_callable_and_a_module() -> None:
    assert ocnb.demo_gateway.DemoGateway is DemoGateway
    with ocnb.demo(seed=9, agents=2, sessions=3, run_rate=0) as fleet:
        assert len(fleet.agents()) == 2


def test_the_demo_leaves_no_device_token_behind(private_environment: Path) -> None:
    """Its gateway, and the pairing it grants, end with the fleet: filing the token would only
    grow the device-token file by one dead entry per run."""
    with ocnb.demo(seed=9, agents=2, sessions=3, run_rate=0) as fleet:
        hello = fleet.clients["demo"].hello
        assert hello is not None and hello.device_token is not None  # paired as a device
    assert (private_environment / "device-key.pem").exists()
    assert not (private_environment / "device-tokens.json").exists()


@pytest.fixture(scope="module")
def demo_fleet() -> Any:
    with ocnb.demo(seed=1, speed=10, run_rate=0.3) as fleet:
        fleet.wait_until(lambda f: len(f.events()) > 20, 30)
        yield fleet


def test_a_firehose_into_a_slow_writer_stays_bounded_and_loses_nothing() -> None:
    gateway = DemoGateway(run_rate=0, churn=False, paused=True)
    store = SlowStore(max_queued=2_000)
    with gateway, ocnb.connect(gateway.url, gateway.token, name="demo", store=store) as fleet:
        before = fleet.catch_up().sql("SELECT count(*) AS n FROM events")["n"].iloc[0]
        gateway.flood(20_000, variety=2_000)  # the client reads only as fast as the store writes
        fleet.catch_up(60)
        assert fleet.sql("SELECT count(*) AS n FROM events")["n"].iloc[0] == before + 20_000
        assert store.stats.waits > 0 and store.stats.max_queued <= 2_000
        assert fleet.status == "live" and fleet.clients["demo"].stats.seq_gaps == 0


def test_waiting_inside_a_snapshot_is_refused_at_once(demo_fleet: Fleet) -> None:
    """Reads there never move: the wait could only run into its timeout."""
    with demo_fleet.snapshot(), pytest.raises(RuntimeError, match="snapshot"):
        demo_fleet.wait_until(lambda f: False, timeout=60)
    assert demo_fleet.wait_until(lambda f: len(f.agents()) > 0, timeout=10) is demo_fleet


def test_a_store_that_cannot_write_shows_in_the_fleet_status_and_logs_once(
    demo_fleet: Fleet, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def full_disk(ops: list[Any]) -> None:
        raise OSError("No space left on device")

    caplog.set_level(logging.INFO, "ocnb.store")
    monkeypatch.setattr(demo_fleet.store, "_apply", full_disk)
    wait_for(lambda: demo_fleet.status == "store failing", 30, "the failure to show")
    assert "No space left" in str(demo_fleet.last_error)
    wait_for(lambda: demo_fleet.store.stats.errors >= 3, 30, "the writer to retry")
    monkeypatch.undo()
    wait_for(lambda: demo_fleet.status == "live", 30, "the retry to succeed")
    logged = [r.levelname for r in caplog.records if r.name == "ocnb.store"]
    assert logged == ["ERROR", "WARNING"]  # the failure once, then its end


def test_repr_and_html_show_operations_the_store_dropped() -> None:
    fleet = Fleet()
    try:
        assert "dropped" not in repr(fleet)
        bad = {"gateway": "gw", "seq": 2**64 - 1, "event": "x", "payload": "{}"}  # no BIGINT
        fleet.store.submit([Append("events", bad)])
        fleet.store.flush()
        assert "1 operation dropped" in repr(fleet)
        assert "1 operation dropped" in fleet._repr_html_()
    finally:
        fleet.close()


class _Client:
    def __init__(self) -> None:
        self.status = "syncing"
        self.stats = ocnb.ClientStats()

    def unreachable(self, since: int) -> None:
        return None


class _FeedTurningLive:
    """A feed whose sync ends right after its status is first checked."""

    name, total_sessions, synced_sessions, last_error = "gw", None, 0, None

    def __init__(self) -> None:
        self.client, self.checked, self.blocking_waits = _Client(), False, 0

    @property
    def status(self) -> str:
        status = self.client.status
        if not self.checked:
            self.checked, self.client.status = True, "live"
        return status

    def wait_for_change(self, seen: str, timeout: float) -> str:
        if self.client.status == seen:  # a real feed would sleep `timeout` here
            self.blocking_waits += 1
        return self.client.status


def test_waiting_for_live_wakes_at_once_when_the_sync_ends_right_after_the_check() -> None:
    feed = _FeedTurningLive()
    _wait_for_feed(feed, time.monotonic() + 5, 5, progress=False)  # type: ignore[arg-type]
    assert feed.blocking_waits == 0
