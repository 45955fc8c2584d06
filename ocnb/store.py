"""`FleetStore`: the fleet in DuckDB, written in batches by one thread, read by any thread.

Operations from `ocnb.ingest` go through a queue to the writer thread `ocnb-writer`, which
applies all that is queued (up to `BATCH_ROWS`) in one transaction: log appends, then upserts
where the newest row per key wins, then sweeps. Each reading thread gets its own cursor.
DuckDB keeps at most `memory_limit` in memory and spills the rest to a temporary directory.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import queue
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa

from ocnb import checkpoints
from ocnb.errors import describe
from ocnb.held import HeldRows
from ocnb.ops import Append, Op, Rebase, ReplacePresence, Sweep, Upsert
from ocnb.schema import (
    IDLE_SESSIONS_RUNS,
    INTERRUPTED_RUNS,
    KEYS,
    LOG_SCHEMA,
    LOGS,
    STATE_KEYS,
    STATE_SCHEMA,
    VIEWS,
    insert_sql,
    merged,
    update_sql,
    upsert_sql,
)

log = logging.getLogger(__name__)

OLD_SESSION_USAGE = """
SELECT count(*) FROM duckdb_tables() t
WHERE t.schema_name = 'main' AND t.table_name = 'session_usage'
  AND NOT EXISTS (SELECT 1 FROM duckdb_columns() c WHERE c.schema_name = 'main'
                  AND c.table_name = 'session_usage' AND c.column_name = 'session_id')
"""

BATCH_ROWS = 20_000
RETRY_SECONDS = 1.0
MAX_QUEUED = 20_000  # operations (rows) waiting for the writer: about 20-40 MB
MEMORY_LIMIT = "192MB"  # DuckDB's buffer pool; an event log larger than this spills to disk
IN_MEMORY_CHECKPOINT = "1000TB"  # checkpoint_threshold for in-memory stores: never

ARROW_TYPES = {
    "VARCHAR": pa.string(),
    "BIGINT": pa.int64(),
    "INTEGER": pa.int32(),
    "DOUBLE": pa.float64(),
    "BOOLEAN": pa.bool_(),
    "TIMESTAMP WITH TIME ZONE": pa.timestamp("ms", tz="UTC"),  # gateways send epoch ms
}
# What a batch can fail with because of a value in it (then the operation at fault is dropped),
# as opposed to the store's own trouble (a full disk: then the batch is kept and retried).
BAD_DATA = (
    ValueError,  # pyarrow.ArrowInvalid among them
    TypeError,
    OverflowError,
    duckdb.DataError,
    duckdb.IntegrityError,
    duckdb.InvalidInputException,
)


def _migrate(con: duckdb.DuckDBPyConnection) -> None:
    """Bring a store written by an earlier ocnb to this schema (new columns are added by the
    schema itself). 0.1 kept one `session_usage` row per session key: its rows are copies of
    the gateway's answers, which the next sync gives again."""
    (old,) = con.execute(OLD_SESSION_USAGE).fetchone() or (0,)
    if old:
        con.execute("DROP TABLE session_usage")


def arrow_schema(con: duckdb.DuckDBPyConnection, table: str) -> pa.Schema:
    """The Arrow schema the writer gives `table`'s rows (its columns in order; times as ms)."""
    columns = con.execute(f"DESCRIBE {table}").fetchall()
    return pa.schema([(name, ARROW_TYPES[kind]) for name, kind, *_ in columns])


@dataclass
class StoreStats:
    """What the writer has done so far."""

    batches: int = 0
    ops: int = 0
    errors: int = 0
    dropped: int = 0  # operations whose data DuckDB or Arrow refused
    last_error: str | None = None
    committed_at: float | None = None
    queued: int = 0
    max_queued: int = 0
    waits: int = 0
    pending: list[Op] = field(default_factory=list, repr=False)


class FleetStore:
    """A DuckDB database of one or more gateways' fleets (in memory unless given a path)."""

    def __init__(
        self,
        path: str | Path | None = None,
        max_queued: int = MAX_QUEUED,
        *,
        memory_limit: str = MEMORY_LIMIT,
        checkpoint_every: int = checkpoints.EVERY,
    ) -> None:
        """`max_queued`: operations waiting for the writer beyond which `submit` waits;
        `memory_limit`: what DuckDB may hold in memory (a DuckDB size, e.g. "1GB");
        `checkpoint_every`: logged inputs between checkpoints of the state (for `fleet_at`)."""
        config: dict[str, Any] = {"memory_limit": memory_limit}
        # a file store spills next to its file; an in-memory one to a directory of its own
        spill = None if path is not None else tempfile.TemporaryDirectory(prefix="ocnb-")
        if spill is not None:
            config["temp_directory"] = spill.name
            # DuckDB's automatic checkpoints stall a commit for longer the larger the log (0.7 s
            # at 40,000 events, BENCHMARKS.md); an in-memory database has no WAL to bound.
            config["checkpoint_threshold"] = IN_MEMORY_CHECKPOINT
        path = str(path) if path is not None else ":memory:"
        con = duckdb.connect(path, config=config)
        con.execute("SET TimeZone = 'UTC'")
        _migrate(con)
        con.execute(STATE_SCHEMA + LOG_SCHEMA + VIEWS)
        taken = checkpoints.Checkpoints(con, STATE_KEYS, checkpoint_every)
        self._start(con, path, max_queued, taken, spill)

    def _start(
        self,
        con: duckdb.DuckDBPyConnection,
        path: str,
        max_queued: int,
        taken: checkpoints.Checkpoints | None,
        spill: tempfile.TemporaryDirectory[str] | None,
    ) -> None:
        """The store on `con`, its schema made: reading cursors, the writer's statements
        (parsed once) and the writer thread."""
        self.path = path
        self.max_queued = max_queued
        self.checkpoints = taken
        self._spill = spill
        self._con = con
        cursor = self._new_cursor()
        self._schemas = {table: arrow_schema(cursor, table) for table in (*KEYS, *LOGS, "presence")}
        names = {table: schema.names for table, schema in self._schemas.items()}
        self._insert_sql = {t: _parsed(cursor, insert_sql(t, names[t])) for t in names}
        self._update_sql = {
            t: _parsed(cursor, update_sql(t, names[t])) for t in KEYS if t != "usage"
        }
        self._upsert_sql = {t: _parsed(cursor, upsert_sql(t, names[t])) for t in KEYS}
        self._full_sessions_sql = _parsed(
            cursor, update_sql("sessions", names["sessions"], full=True)
        )
        self._idle_sessions_runs_sql = _parsed(cursor, IDLE_SESSIONS_RUNS)
        cursor.close()
        self._held: HeldRows | None = None  # read on the writer's first batch
        self._local = threading.local()
        self._cursors: list[duckdb.DuckDBPyConnection] = []
        self._cursors_lock = threading.Lock()
        self._queue: queue.Queue[list[Op] | None] = queue.Queue()
        self._submitted = 0
        self._applied = 0
        self._failing_with: str | None = None  # the error of the current streak of failures
        self._failed_attempts = 0
        self._applied_changed = threading.Condition()
        self._listeners: list[Callable[[], None]] = []
        self.stats = StoreStats()
        self._writer_cursor = self._new_cursor()
        self._writer = threading.Thread(target=self._write_forever, name="ocnb-writer", daemon=True)
        self._writer.start()

    def _new_cursor(self) -> duckdb.DuckDBPyConnection:
        return self._con.cursor()

    def __repr__(self) -> str:
        return f"<FleetStore {self.path} batches={self.stats.batches}>"

    # --- writing --------------------------------------------------------------------------------

    def submit(self, ops: Sequence[Op]) -> None:
        """Queue operations for the writer; safe from any thread. While the writer is more than
        `max_queued` operations behind, wait (back-pressure: a gateway's reader slows down, and
        the gateway's own slow-consumer handling takes over)."""
        if not ops:
            return
        with self._applied_changed:
            while (
                self.stats.queued
                and self.stats.queued + len(ops) > self.max_queued
                and self._writer.is_alive()
                and threading.current_thread() is not self._writer
            ):
                self.stats.waits += 1
                self._applied_changed.wait(1.0)
            self.stats.queued += len(ops)
            self.stats.max_queued = max(self.stats.max_queued, self.stats.queued)
            self._submitted += 1
            self._queue.put(list(ops))

    def on_commit(self, listener: Callable[[], None]) -> None:
        """Call `listener()` on the writer thread after each committed batch."""
        self._listeners.append(listener)

    def flush(self, timeout: float = 10.0) -> None:
        """Wait until everything submitted so far is committed (or raise `TimeoutError`)."""
        target = self._submitted
        deadline = time.monotonic() + timeout
        with self._applied_changed:
            while self._applied < target:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not self._writer.is_alive():
                    raise TimeoutError(
                        f"store writer behind after {timeout:g} s "
                        f"(last error: {self.stats.last_error})"
                    )
                self._applied_changed.wait(remaining)

    def _write_forever(self) -> None:
        """Group commit: each batch is everything queued meanwhile (up to `BATCH_ROWS`), so a
        quiet fleet commits at once and a busy one in ever larger batches."""
        unreleased = 0  # operations written since Arrow's pool last gave memory back
        while True:
            try:  # a batch that failed is retried every second, new operations or not
                first = self._queue.get(timeout=RETRY_SECONDS if self.stats.pending else None)
            except queue.Empty:
                first = []
            if first is None:
                return
            submissions, ops = (1 if first else 0), list(first)
            while len(ops) < BATCH_ROWS:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    self._queue.put(None)
                    break
                submissions += 1
                ops += more
            committed = self._commit(ops)
            unreleased += len(ops)
            if unreleased >= BATCH_ROWS and self._queue.empty():
                # Arrow's pool would keep a flood's batch memory (~40 MB) for good: hand it back
                # whenever the writer has caught up (< 1 ms).
                pa.default_memory_pool().release_unused()
                unreleased = 0
            with self._applied_changed:
                self.stats.queued -= committed
                self._applied += submissions
                self._applied_changed.notify_all()

    def _commit(self, ops: list[Op]) -> int:
        """Write the batch (after any that failed before); returns how many operations are done
        with: written, or dropped as unwritable. The rest wait in `stats.pending`."""
        batch = self.stats.pending + ops
        unwritten, exc = self._apply_around_bad_data(batch)
        if exc is not None:  # a full disk or a bug must not kill the writer
            error = describe(exc)[:500]
            if error != self._failing_with:  # logged once per streak, not once per retry
                log.error("ocnb store: %d operations not written", len(unwritten), exc_info=exc)
            self._failing_with = error
            self._failed_attempts += 1
            self.stats.errors += 1
            self.stats.last_error = error
        elif self._failing_with is not None:
            log.warning("ocnb store: written again after %d failed attempts", self._failed_attempts)
            self._failing_with, self._failed_attempts = None, 0
        self.stats.pending = unwritten  # none once all is written; else kept, and retried
        done = len(batch) - len(unwritten)
        if done:  # parts written before a failure are committed: readers may see them now
            self._committed(done)
        return done

    def _committed(self, ops: int) -> None:
        self.stats.batches += 1
        self.stats.ops += ops
        self.stats.committed_at = time.time()
        for listener in self._listeners:
            try:
                listener()
            except Exception:
                log.exception("ocnb store listener %r failed", listener)

    def _apply_around_bad_data(self, ops: list[Op]) -> tuple[list[Op], Exception | None]:
        """Apply `ops` in order. Where DuckDB or Arrow refuse the data (and the store writes
        without it), halve the failing part until the operation at fault is alone, and drop
        that one (logged, counted in `stats.dropped`): one bad value must not hold up all that
        follows. Any other error (a full disk) stops there: returns the operations not written,
        and the error."""
        parts = [ops]
        while parts:
            part = parts.pop()
            try:
                try:
                    self._apply(part)
                except BAD_DATA as exc:
                    self._apply([])  # the store writes without this part: the fault is in it
                    if len(part) > 1:
                        middle = len(part) // 2
                        parts += [part[middle:], part[:middle]]
                    else:
                        self._drop(part[0], exc)
            except Exception as exc:
                return [*part, *(op for later in reversed(parts) for op in later)], exc
        return [], None

    def _drop(self, op: Op, exc: Exception) -> None:
        table = getattr(op, "table", None) or type(op).__name__
        error = f"dropped one {table} operation: {describe(exc)}"[:500]
        log.error("ocnb store: %s", error)
        self.stats.dropped += 1
        self.stats.last_error = error

    def _apply(self, ops: list[Op]) -> None:
        """Apply a batch in one transaction; a `Rebase` splits it, so that what came before it
        is written (and rebased) before what came after."""
        con = self._writer_cursor
        taking = None
        con.execute("BEGIN")
        try:
            segment: list[Op] = []
            for op in ops:
                if isinstance(op, Rebase):
                    self._apply_segment(con, segment)
                    segment = []
                    con.execute(
                        "UPDATE sessions SET version = 0 WHERE gateway = ? AND version < ?",
                        [op.gateway, op.before],
                    )
                    if self.checkpoints is not None:
                        self.checkpoints.note((), {}, [("sessions", op.gateway)])
                else:
                    segment.append(op)
            self._apply_segment(con, segment)
            if self.checkpoints is not None and self.checkpoints.due():
                taking = self.checkpoints
                taking.take(con)
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            self._held = None  # it may name keys the rollback removed
            raise
        if taking is not None:
            taking.taken()

    def _apply_segment(self, con: Any, ops: list[Op]) -> None:
        """Operations merged per table: appends, then upserts (newest row per key), then
        presence, then sweeps."""
        appends: dict[str, list[dict[str, Any]]] = {"events": [], "usage": [], "sync_log": []}
        upserts: dict[str, dict[tuple[Any, ...], dict[str, Any]]] = {t: {} for t in KEYS}
        presence: dict[str, ReplacePresence] = {}
        sweeps: list[Sweep] = []
        idle: dict[tuple[str, str], int] = {}  # (gateway, session key) -> version shown idle
        for op in ops:
            if isinstance(op, Append):
                appends[op.table].append(op.row)
            elif isinstance(op, Upsert):
                key = tuple(op.row[k] for k in KEYS[op.table])
                old = upserts[op.table].get(key)
                upserts[op.table][key] = op.row if old is None else merged(op.table, old, op.row)
                if op.table == "sessions" and op.row.get("has_active_run") is False:
                    idle_key = (op.row["gateway"], op.row["session_key"])
                    idle[idle_key] = max(op.row["version"], idle.get(idle_key, 0))
            elif isinstance(op, ReplacePresence):
                older = presence.get(op.gateway)
                if older is None or op.version >= older.version:
                    presence[op.gateway] = op
            elif isinstance(op, Sweep):
                sweeps.append(op)
        if appends["usage"]:  # a message is counted once, however often it is seen
            upserts["usage"] = {(r["gateway"], r["message_id"]): r for r in appends["usage"]}
        if self.checkpoints is not None:
            self.checkpoints.note(
                itertools.chain(*(appends[log_table] for log_table in LOGS)),
                {table: rows_by_key.keys() for table, rows_by_key in upserts.items()},
                [(sweep.table, sweep.gateway) for sweep in sweeps],
            )
        for log_table in LOGS:
            if appends[log_table]:
                self._write(con, log_table, appends[log_table])
        held = self._held_rows(con)
        for table, rows_by_key in upserts.items():
            if rows_by_key:  # new keys are inserted, held ones updated (cheaper than ON CONFLICT)
                new, known, unknown = held.split(table, rows_by_key)
                if new:
                    self._write(con, table, new)
                if known and table != "usage":
                    self._update_held(con, table, known)
                if unknown:
                    self._write(con, table, unknown, self._upsert_sql[table])
        held.note_runs(upserts["runs"].values())
        idle_with_runs = held.idle_with_runs(idle)
        if idle_with_runs:
            self._close_runs_of_idle_sessions(con, idle_with_runs)
            held.checked(idle_with_runs)
        for replace in presence.values():
            self._replace_presence(con, replace)
        for sweep in sweeps:
            self._sweep(con, sweep)

    def _close_runs_of_idle_sessions(self, con: Any, idle: dict[tuple[str, str], int]) -> None:
        gateways, keys = zip(*idle, strict=True)
        idle_sessions = pa.table(  # noqa: F841 - read by the statement (as in `_write`)
            {
                "gateway": pa.array(gateways, pa.string()),
                "session_key": pa.array(keys, pa.string()),
                "version": pa.array(idle.values(), pa.int64()),
            }
        )
        self._closed_runs(con.execute(self._idle_sessions_runs_sql).fetchall())

    def _closed_runs(self, keys: list[tuple[str, str]]) -> None:
        """Runs the store closed by itself (not from an op): the next checkpoint copies them."""
        if self._held is not None:
            self._held.ended(keys)
        if keys and self.checkpoints is not None:
            self.checkpoints.note_rows("runs", keys)

    def _update_held(self, con: Any, table: str, rows: list[dict[str, Any]]) -> None:
        """Rows merged into those held; complete session rows (nearly all on v4) with a plain
        SET, cheaper than the merge of partial ones."""
        if table == "sessions":
            full = [row for row in rows if not row.get("partial")]
            if full:
                self._write(con, table, full, self._full_sessions_sql)
            rows = [row for row in rows if row.get("partial")]
        if rows:
            self._write(con, table, rows, self._update_sql[table])

    def _held_rows(self, con: Any) -> HeldRows:
        if self._held is None:
            self._held = HeldRows(con, KEYS, self._schemas)
        return self._held

    def _write(
        self,
        con: Any,
        table: str,
        rows: list[dict[str, Any]],
        statement: duckdb.Statement | None = None,
    ) -> None:
        """Rows as one Arrow table `batch` typed like the DuckDB table (ms ints for times):
        inserted, or given to `statement`. DuckDB reads `batch` from this frame's locals (its
        replacement scan: half the cost of registering and unregistering a view per statement)."""
        batch = pa.Table.from_pylist(rows, schema=self._schemas[table])  # noqa: F841 - read by the statement
        con.execute(self._insert_sql[table] if statement is None else statement)

    def _replace_presence(self, con: Any, replace: ReplacePresence) -> None:
        current = con.execute(
            "SELECT presence_version FROM gateways WHERE gateway = ?", [replace.gateway]
        ).fetchone()
        if current is not None and current[0] is not None and current[0] > replace.version:
            return
        con.execute("DELETE FROM presence WHERE gateway = ?", [replace.gateway])
        if replace.rows:
            self._write(con, "presence", replace.rows)
        con.execute(
            "INSERT INTO gateways (gateway, presence_version) VALUES (?, ?) "
            "ON CONFLICT DO UPDATE SET presence_version = excluded.presence_version",
            [replace.gateway, replace.version],
        )

    def _sweep(self, con: Any, sweep: Sweep) -> None:
        keep = sorted(sweep.keep)
        keep_keys = pa.table({"k": pa.array(keep, pa.string())})  # noqa: F841 - as in `_write`
        if sweep.table == "sessions":
            con.execute(
                "UPDATE sessions SET deleted = true, has_active_run = false, version = ? "
                "WHERE gateway = ? AND NOT deleted AND version < ? "
                "AND session_key NOT IN (SELECT k FROM keep_keys)",
                [sweep.before, sweep.gateway, sweep.before],
            )
            self._closed_runs(
                con.execute(INTERRUPTED_RUNS, [sweep.gateway, sweep.before]).fetchall()
            )
        else:
            con.execute(
                "UPDATE agents SET removed = true WHERE gateway = ? AND NOT removed "
                "AND version < ? AND agent_id NOT IN (SELECT k FROM keep_keys)",
                [sweep.gateway, sweep.before],
            )

    # --- reading --------------------------------------------------------------------------------

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """This thread's own cursor on the database."""
        cursor: duckdb.DuckDBPyConnection | None = getattr(self._local, "cursor", None)
        if cursor is None:
            cursor = self._new_cursor()
            self._local.cursor = cursor
            with self._cursors_lock:
                self._cursors.append(cursor)
        return cursor

    @property
    def in_snapshot(self) -> bool:
        """Whether this thread is inside `snapshot()` (its reads do not move)."""
        return bool(getattr(self._local, "snapshot", False))

    @contextlib.contextmanager
    def snapshot(self) -> Iterator[None]:
        """Reads from this thread inside the block all see the store at one moment (one read
        transaction on this thread's cursor; the writer goes on meanwhile). Keep it short:
        DuckDB holds on to what changes after it until the block ends."""
        if self.in_snapshot:
            yield  # already inside one
            return
        cursor = self.cursor()
        cursor.execute("BEGIN TRANSACTION")
        cursor.execute("SELECT 1 FROM gateways LIMIT 0")  # DuckDB fixes the moment at a first read
        self._local.snapshot = True
        try:
            yield
        finally:
            self._local.snapshot = False
            with contextlib.suppress(duckdb.Error):  # only a closed store refuses
                cursor.execute("ROLLBACK")  # nothing to keep: the block only reads

    def df(self, query: str, params: Iterable[Any] | dict[str, Any] | None = None) -> pd.DataFrame:
        """Run a query from this thread and return a pandas DataFrame (nullable dtypes)."""
        return to_pandas(self.arrow(query, params))

    def arrow(self, query: str, params: Iterable[Any] | dict[str, Any] | None = None) -> pa.Table:
        """A read-only query on a snapshot of the store, as a pyarrow Table."""
        table: pa.Table = self.cursor().sql(query, params=params).to_arrow_table()
        return table

    def batches(
        self, query: str, params: dict[str, Any] | None = None, rows: int = 10_000
    ) -> Iterator[pa.RecordBatch]:
        """Stream a query's result from this thread, `rows` at a time (for results larger than
        the memory limit)."""
        reader = self.cursor().sql(query, params=params).to_arrow_reader(rows)
        yield from reader

    def close(self) -> None:
        """Write everything queued, stop the writer and close the database."""
        self._stop()
        self._con.close()
        if self._spill is not None:
            self._spill.cleanup()

    def _stop(self) -> None:
        """Write everything queued, stop the writer and close every cursor."""
        self._queue.put(None)
        self._writer.join()
        with self._cursors_lock:
            for cursor in (*self._cursors, self._writer_cursor):
                with contextlib.suppress(duckdb.Error):
                    cursor.close()


class PastStore(FleetStore):
    """A store of the past beside a live one, in the live store's database: its state tables
    in an in-memory catalog of their own (filled by `ocnb.history`), its logs views of the live
    logs up to `until`. It shares the live store's connection and memory; close it before the
    live store."""

    _numbers = itertools.count(1)

    def __init__(self, live: FleetStore, until: datetime) -> None:
        self.catalog = f"ocnb_past_{next(self._numbers)}"
        setup = live._con.cursor()
        try:
            self.source: str = setup.execute("SELECT current_database()").fetchall()[0][0]
            setup.execute(f"ATTACH ':memory:' AS {self.catalog}; USE {self.catalog}")
            logs = " ".join(
                f"CREATE VIEW {log} AS SELECT * FROM {self.source}.main.{log} "  # noqa: S608 - our own names
                f"WHERE received_at <= '{until.isoformat()}'::TIMESTAMPTZ;"
                for log in LOGS
            )
            setup.execute(STATE_SCHEMA + logs + VIEWS)
        finally:
            setup.close()
        self._start(live._con, f"{live.path} as of {until.isoformat()}", MAX_QUEUED, None, None)

    def _new_cursor(self) -> duckdb.DuckDBPyConnection:
        cursor = self._con.cursor()
        cursor.execute(f"USE {self.catalog}")
        return cursor

    def close(self) -> None:
        """Stop the writer and drop the past's catalog (the live database stays open)."""
        self._stop()
        with contextlib.suppress(duckdb.Error):  # the live store may be closed already
            cursor = self._con.cursor()
            cursor.execute(f"DETACH {self.catalog}")
            cursor.close()


_PANDAS_TYPES = {
    pa.int64(): pd.Int64Dtype(),
    pa.int32(): pd.Int32Dtype(),
    pa.bool_(): pd.BooleanDtype(),
}


def to_pandas(table: pa.Table) -> pd.DataFrame:
    """Arrow to pandas keeping integers and booleans nullable and timestamps tz-aware."""
    frame: pd.DataFrame = table.to_pandas(types_mapper=_PANDAS_TYPES.get)
    return frame


def _parsed(con: duckdb.DuckDBPyConnection, sql: str) -> duckdb.Statement:
    """`sql` parsed once (parsing is ~15 % of a small batch's UPDATE)."""
    (statement,) = con.extract_statements(sql)
    return statement
