"""FleetStore: batched writes where the newest row wins, concurrent reads, durability."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest.mock import Mock

import duckdb
import pytest
from support.helpers import SlowStore, wait_for

from ocnb import held
from ocnb.demo_gateway.flood import render
from ocnb.ingest import Ingestor
from ocnb.ops import Append, Rebase, ReplacePresence, Sweep, Upsert
from ocnb.protocol import decode_frame
from ocnb.store import FleetStore


@pytest.fixture(params=["keys held", "too many keys to hold"])
def store(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[FleetStore]:
    """A store whose writer knows the keys its tables hold, and one that leaves them to DuckDB
    after its first batch."""
    if request.param == "too many keys to hold":
        monkeypatch.setattr(held, "MAX_KEYS", 0)
    store = FleetStore()
    yield store
    store.close()


def session(key: str, version: int, **fields: Any) -> Upsert:
    row = {
        "gateway": "gw",
        "session_key": key,
        "deleted": False,
        "partial": False,
        "version": version,
    }
    row.update(updated_at=version, **fields)
    return Upsert("sessions", row)


def one(store: FleetStore, query: str) -> Any:
    store.flush()
    return store.cursor().execute(query).fetchall()


def test_within_a_batch_the_newest_row_per_key_wins(store: FleetStore) -> None:
    store.submit([session("k", 20, status="done"), session("k", 10, status="running")])
    assert one(store, "SELECT status, version FROM sessions") == [("done", 20)]


def test_a_stale_row_never_overwrites_a_newer_one(store: FleetStore) -> None:
    store.submit([session("k", 20, status="done")])
    store.flush()
    store.submit([session("k", 10, status="running")])
    assert one(store, "SELECT status FROM sessions") == [("done",)]


@pytest.mark.parametrize("one_batch", [True, False], ids=["one batch", "two batches"])
def test_a_resync_supersedes_rows_held_from_before_it(store: FleetStore, one_batch: bool) -> None:
    """After a restart a gateway may report an older state than it announced before it."""
    before = [session("lost", 200, status="done"), session("raced", 400, status="done")]
    resync = [Rebase("gw", 300), session("lost", 100, status="running")]
    resync.append(session("raced", 350, status="running"))  # older than a live event: loses
    if one_batch:
        store.submit(before + resync)
    else:
        store.submit(before)
        store.flush()
        store.submit(resync)
    rows = one(store, "SELECT session_key, status FROM sessions ORDER BY 1")
    assert rows == [("lost", "running"), ("raced", "done")]


def test_partial_rows_only_fill_in(store: FleetStore) -> None:
    store.submit([session("k", 10, status="done", input_tokens=100, model="m")])
    store.flush()
    store.submit([session("k", 20, status="running", partial=True)])
    assert one(store, "SELECT status, input_tokens, model FROM sessions") == [("running", 100, "m")]


def test_a_full_row_clears_what_it_leaves_out(store: FleetStore) -> None:
    store.submit([session("k", 10, status="failed", last_run_error="boom")])
    store.flush()
    store.submit([session("k", 20, status="done")])
    assert one(store, "SELECT status, last_run_error FROM sessions") == [("done", None)]


def test_a_delete_never_removes_a_replacement_generation(store: FleetStore) -> None:
    store.submit([session("k", 10, session_id="new")])
    store.flush()
    gone = {
        "gateway": "gw",
        "session_key": "k",
        "session_id": "old",
        "deleted": True,
        "partial": True,
        "version": 30,
    }
    store.submit([Upsert("sessions", gone)])
    assert one(store, "SELECT deleted FROM sessions") == [(False,)]
    store.submit([Upsert("sessions", {**gone, "session_id": "new"})])
    assert one(store, "SELECT deleted, session_id FROM sessions") == [(True, "new")]


def test_a_sweep_deletes_what_vanished_before_the_sync_only(store: FleetStore) -> None:
    store.submit([session("kept", 10), session("vanished", 10), session("born-during-sync", 50)])
    store.submit([Sweep("sessions", "gw", frozenset({"kept"}), 40)])
    rows = one(store, "SELECT session_key, deleted FROM sessions ORDER BY session_key")
    assert rows == [("born-during-sync", False), ("kept", False), ("vanished", True)]


def test_presence_is_replaced_whole_and_never_by_an_older_version(store: FleetStore) -> None:
    def presence(version: int, *hosts: str) -> ReplacePresence:
        return ReplacePresence(
            "gw", version, [{"gateway": "gw", "instance_id": h, "host": h} for h in hosts]
        )

    store.submit([presence(2, "a", "b")])
    store.flush()
    store.submit([presence(3, "c")])
    store.flush()
    store.submit([presence(1, "old")])
    assert one(store, "SELECT host FROM presence") == [("c",)]


def test_a_late_start_does_not_reopen_a_finished_run(store: FleetStore) -> None:
    def run(**fields: Any) -> Upsert:
        return Upsert("runs", {"gateway": "gw", "run_id": "r", "session_key": "k", **fields})

    store.submit([run(status="done", ended_at=90)])
    store.flush()
    store.submit([run(status="running", started_at=10, model="m")])
    assert one(
        store, "SELECT status, model, epoch_ms(started_at), epoch_ms(ended_at) FROM runs"
    ) == [("done", "m", 10, 90)]


def test_usage_rows_are_recorded_once(store: FleetStore) -> None:
    usage = Append(
        "usage", {"gateway": "gw", "message_id": "m", "session_key": "k", "total_tokens": 5}
    )
    store.submit([usage, usage])
    store.flush()
    store.submit([usage])
    assert one(store, "SELECT count(*) FROM usage") == [(1,)]


def test_a_failed_batch_is_kept_and_written_later(
    store: FleetStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_apply = store._apply
    failures = iter([OSError("No space left on device")])

    def flaky(ops: Any) -> None:
        error = next(failures, None)
        if error is not None:
            raise error
        real_apply(ops)

    monkeypatch.setattr(store, "_apply", flaky)
    store.submit([session("first", 1)])
    store.flush()
    assert store.stats.errors == 1
    assert "No space left" in (store.stats.last_error or "")
    store.submit([session("second", 2)])
    assert one(store, "SELECT session_key FROM sessions ORDER BY 1") == [("first",), ("second",)]


def test_reads_while_the_writer_runs_flat_out_never_error(store: FleetStore) -> None:
    stop = threading.Event()

    def write() -> None:
        n = 0
        while not stop.is_set():
            if store._queue.qsize() > 50:  # keep the writer busy, not buried
                time.sleep(0.001)
                continue
            store.submit(
                [
                    Append(
                        "events", {"gateway": "gw", "seq": n + i, "event": "tick", "payload": "{}"}
                    )
                    for i in range(200)
                ]
                + [session(f"k{n % 500}", n)]
            )
            n += 200

    writer = threading.Thread(target=write)
    writer.start()
    try:
        counts = []
        while len(counts) < 200:
            counts.append(store.cursor().execute("SELECT count(*) FROM events").fetchall()[0][0])
            store.df("SELECT * FROM sessions ORDER BY version DESC LIMIT 5")
    finally:
        stop.set()
        writer.join()
    assert counts == sorted(counts)
    assert counts[-1] > 0
    assert store.stats.errors == 0


def test_a_durable_store_keeps_every_committed_batch_after_kill_9(tmp_path: Path) -> None:
    path = tmp_path / "fleet.duckdb"
    script = textwrap.dedent(
        f"""
        from ocnb.ops import Append
        from ocnb.store import FleetStore
        store = FleetStore({str(path)!r})
        for batch in range(1_000_000):
            rows = [{{"gateway": "gw", "seq": batch * 100 + n, "event": "e"}} for n in range(100)]
            store.submit([Append("events", row) for row in rows])
            store.flush()
            print(batch + 1, flush=True)
        """
    )
    process = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    committed = 0
    while committed < 30:
        committed = int(process.stdout.readline())
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    process.stdout.close()
    reopened = FleetStore(path)
    try:
        count = reopened.cursor().execute("SELECT count(*) FROM events").fetchone()[0]  # type: ignore[index]
        assert count >= committed * 100
        reopened.submit(
            [Append("events", {"gateway": "gw", "seq": -1, "event": "after", "payload": "{}"})]
        )
        wait_for(
            lambda: (
                reopened.cursor()
                .execute("SELECT count(*) FROM events WHERE event = 'after'")
                .fetchone()[0]
                == 1
            )
        )  # type: ignore[index]
    finally:
        reopened.close()


def test_an_agents_last_error_clears_after_a_later_successful_run(store: FleetStore) -> None:
    store.submit(
        [
            Upsert("agents", {"gateway": "gw", "agent_id": "a", "removed": False, "version": 1}),
            session(
                "agent:a:one", 10, agent_id="a", status="failed", last_run_error="boom", ended_at=10
            ),
            session("agent:a:two", 20, agent_id="a", status="done", ended_at=20),
        ]
    )
    assert one(store, "SELECT status, last_run_error FROM agent_cards") == [("idle", None)]


def test_a_slow_writer_holds_submitters_back_and_loses_nothing() -> None:
    store = SlowStore(max_queued=1_000)
    try:
        for n in range(100):
            store.submit([session(f"k{n}-{i}", 1) for i in range(50)])
        store.flush(60)
        assert one(store, "SELECT count(*) FROM sessions") == [(5_000,)]
        assert store.stats.waits > 0 and store.stats.max_queued <= 1_000
        assert store.stats.queued == 0
    finally:
        store.close()


def test_a_failed_batch_is_retried_without_new_work(
    store: FleetStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_apply = store._apply
    failures = iter([OSError("No space left on device")])

    def flaky(ops: list[Any]) -> None:
        error = next(failures, None)
        if error is not None:
            raise error
        real_apply(ops)

    monkeypatch.setattr(store, "_apply", flaky)
    store.submit([session("k", 1, status="done")])
    wait_for(lambda: store.stats.errors == 1 and not store.stats.pending, 10, "the retry")
    assert one(store, "SELECT status FROM sessions") == [("done",)]
    assert store.stats.queued == 0 and "No space" in (store.stats.last_error or "")


def test_a_batch_rolled_back_after_new_rows_writes_them_all_on_its_retry(
    store: FleetStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The writer's knowledge of held keys must forget what a rollback removed."""
    real_sweep = store._sweep
    failures = iter([OSError("disk full during the sweep")])

    def failing_sweep(con: Any, sweep: Sweep) -> None:
        error = next(failures, None)
        if error is not None:
            raise error
        real_sweep(con, sweep)

    monkeypatch.setattr(store, "_sweep", failing_sweep)
    store.submit([session("kept", 10), Sweep("sessions", "gw", frozenset({"kept"}), 5)])
    wait_for(lambda: store.stats.errors == 1 and not store.stats.pending, 10, "the retry")
    store.submit([session("kept", 20, status="done")])
    assert one(store, "SELECT session_key, status, version FROM sessions") == [("kept", "done", 20)]


def test_a_reopened_store_still_closes_the_runs_it_held_running(tmp_path: Path) -> None:
    path = tmp_path / "fleet.duckdb"
    run = {"gateway": "gw", "run_id": "r", "session_key": "k", "status": "running"}
    with_run = [session("k", 100, has_active_run=True), Upsert("runs", {**run, "started_at": 100})]
    first = FleetStore(path)
    first.submit(with_run)
    first.close()
    second = FleetStore(path)
    try:
        second.submit([session("k", 200, has_active_run=False)])
        assert one(second, "SELECT status FROM runs") == [("interrupted",)]
    finally:
        second.close()


def test_a_sync_closes_runs_that_ended_unseen(store: FleetStore) -> None:
    def run(run_id: str, key: str, started: int) -> Upsert:
        row = {"gateway": "gw", "run_id": run_id, "session_key": key, "status": "running"}
        return Upsert("runs", {**row, "started_at": started})

    store.submit(
        [
            session("idle", 150, has_active_run=False),
            session("busy", 150, has_active_run=True, active_run_id="r-busy"),
            run("r-lost", "idle", 100),  # the gateway restarted mid-run: no end ever came
            run("r-busy", "busy", 100),
            run("r-new", "idle", 300),  # began after the sync read the session
            Sweep("sessions", "gw", frozenset({"idle", "busy"}), 200),
        ]
    )
    statuses = one(store, "SELECT run_id, status FROM runs ORDER BY 1")
    assert statuses == [("r-busy", "running"), ("r-lost", "interrupted"), ("r-new", "running")]


def test_a_session_shown_idle_closes_its_older_runs(store: FleetStore) -> None:
    """After a restart the gateway resumes a killed run as a new one while the sync reads the
    session as busy; when that session later shows no active run, the killed run is over."""

    def run(run_id: str, started: int, status: str = "running") -> Upsert:
        row = {"gateway": "gw", "run_id": run_id, "session_key": "k", "status": status}
        return Upsert("runs", {**row, "started_at": started})

    store.submit([session("k", 100, has_active_run=True), run("r-killed", 100)])
    store.submit([run("r-resumed", 200), session("k", 250, has_active_run=True)])
    assert one(store, "SELECT count(*) FROM runs WHERE status = 'running'") == [(2,)]
    store.submit([run("r-resumed", 200, "done"), session("k", 300, has_active_run=False)])
    store.submit([run("r-next", 400)])  # began after the session was shown idle
    statuses = one(store, "SELECT run_id, status FROM runs ORDER BY 1")
    assert statuses == [("r-killed", "interrupted"), ("r-next", "running"), ("r-resumed", "done")]
    store.submit([run("r-killed", 100, "done")])  # its end, seen late, still wins
    assert one(store, "SELECT status FROM runs WHERE run_id = 'r-killed'") == [("done",)]


def test_an_in_memory_store_larger_than_its_memory_limit_spills_and_streams() -> None:
    ingestor, store = Ingestor("gw"), FleetStore(memory_limit="32MB")
    spill = Path(store._con.execute("SELECT current_setting('temp_directory')").fetchall()[0][0])
    try:
        for seq, frame in enumerate(render(30_000, protocol=4), start=1):
            store.submit(ingestor.event(decode_frame(f'{frame},"seq":{seq}}}'), seq).ops)
        logged = one(store, "SELECT count(*), sum(strlen(payload)) FROM events")[0]
        assert logged[0] == 30_000 and logged[1] > 50_000_000  # JSON beyond the limit
        assert any(spill.iterdir()), "nothing spilled"
        query = "SELECT seq, payload FROM events"  # in the order written, as fleet_at reads it
        streamed = [row["seq"] for batch in store.batches(query) for row in batch.to_pylist()]
        assert streamed == list(range(1, 30_001))
    finally:
        store.close()
    assert not spill.exists()


def test_an_operation_whose_data_the_store_refuses_is_dropped_and_the_rest_written(
    store: FleetStore,
) -> None:
    def logged(seq: int) -> Append:
        return Append("events", {"gateway": "gw", "seq": seq, "event": "e", "payload": "{}"})

    bad_row = session("bad", 5, context_tokens=2**64 - 1)  # beyond BIGINT: Arrow refuses it
    store.submit([*map(logged, range(5)), bad_row, session("good", 6), *map(logged, range(5, 9))])
    store.submit([logged(2**64 - 1), logged(9)])
    assert one(store, "SELECT seq FROM events") == [(n,) for n in range(10)]  # in write order
    assert one(store, "SELECT session_key FROM sessions") == [("good",)]
    assert store.stats.dropped == 2 and not store.stats.pending
    assert "dropped one events operation" in (store.stats.last_error or "")


def test_a_store_that_refuses_every_batch_drops_nothing(
    store: FleetStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fault of the store's own that looks like bad data (here: every checkpoint refused)
    keeps the batch for retry instead of dropping its operations one by one."""
    assert store.checkpoints is not None
    with monkeypatch.context() as patch:
        patch.setattr(store.checkpoints, "due", lambda: True)
        patch.setattr(
            store.checkpoints, "take", Mock(side_effect=duckdb.ConversionException("refused"))
        )
        store.submit([session("a", 1), session("b", 2)])
        store.flush()
        assert store.stats.dropped == 0 and len(store.stats.pending) == 2
        assert "refused" in (store.stats.last_error or "")
    store.submit([session("c", 3)])
    assert one(store, "SELECT session_key FROM sessions ORDER BY 1") == [("a",), ("b",), ("c",)]


def test_what_was_written_before_a_failure_is_announced_without_waiting_for_the_retry(
    store: FleetStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch split around a bad value, then stopped by a full disk: the parts already
    committed count as written and the listeners hear of them at once."""
    first, bad, last = (
        session("first", 1),
        session("bad", 2, context_tokens=2**64),
        session("last", 3),
    )
    real_apply = store._apply
    disk_full = iter([OSError("No space left on device")])

    def full_disk_at_the_last_part(ops: list[Any]) -> None:
        if ops == [last] and (error := next(disk_full, None)) is not None:
            raise error
        real_apply(ops)

    monkeypatch.setattr(store, "_apply", full_disk_at_the_last_part)
    pending_when_announced: list[int] = []
    store.on_commit(lambda: pending_when_announced.append(len(store.stats.pending)))
    store.submit([first, bad, last])
    wait_for(lambda: len(pending_when_announced) == 2, 10, "the commit and the retry")
    assert pending_when_announced == [1, 0]  # "first" announced while "last" still waited
    assert store.stats.dropped == 1 and store.stats.errors == 1 and store.stats.ops == 3
    assert one(store, "SELECT session_key FROM sessions ORDER BY 1") == [("first",), ("last",)]


def test_reads_inside_a_snapshot_all_see_one_moment(store: FleetStore) -> None:
    store.submit([session("before", 1)])
    store.flush()
    with store.snapshot():
        store.submit([session("during", 2)])
        store.flush()
        with store.snapshot():  # nested: the same moment
            assert store.df("SELECT session_key FROM sessions").session_key.tolist() == ["before"]
        assert store.arrow("SELECT count(*) AS n FROM sessions")["n"].to_pylist() == [1]
    assert one(store, "SELECT session_key FROM sessions ORDER BY 1") == [("before",), ("during",)]
    with pytest.raises(duckdb.ConversionException), store.snapshot():
        store.df("SELECT 'x'::INTEGER")  # a failed read aborts DuckDB's transaction
    assert one(store, "SELECT count(*) FROM sessions") == [(2,)]  # the block ended it
