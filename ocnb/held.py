"""What the store's writer knows its tables hold, so that it asks DuckDB only what it must.

DuckDB updates rows far faster with a plain `UPDATE … FROM` than with `INSERT … ON CONFLICT`,
and checks nothing faster than not at all. The writer therefore keeps the key of every row in
each keyed table (new keys are inserted, held ones updated) up to `MAX_KEYS` per table (beyond
that it lets `ON CONFLICT` decide), and every run that may be `running` (a session shown idle
is checked against DuckDB only when one of its runs may still be). Both are read from the
database on first use, and again after a rolled-back batch.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import duckdb
import pyarrow as pa

from ocnb.ops import TERMINAL_STATUSES

Key = tuple[Any, ...]
MAX_KEYS = 200_000  # per table (~40 MB): runs and usage grow with a fleet's whole history


class HeldRows:
    """Keys per keyed table, and the runs that may be running: (gateway, run id) -> (session
    key, start in ms). The latter holds every run the table holds as `running`, and possibly a
    few that have ended since (checking those costs a query, never a wrong answer)."""

    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        keys: Mapping[str, tuple[str, ...]],
        schemas: Mapping[str, pa.Schema],
    ) -> None:
        self.keys: dict[str, set[Key] | None] = {}  # None: too many to keep
        for table, columns in keys.items():
            selected = ", ".join(
                f"epoch_ms({c})" if pa.types.is_timestamp(schemas[table].field(c).type) else c
                for c in columns
            )
            found = con.execute(f"SELECT {selected} FROM {table} LIMIT {MAX_KEYS + 1}").fetchall()  # noqa: S608 - our own names
            self.keys[table] = set(found) if len(found) <= MAX_KEYS else None
        self.running: dict[Key, tuple[str, int | None]] = {
            (gateway, run_id): (session_key, started)
            for gateway, run_id, session_key, started in con.execute(
                "SELECT gateway, run_id, session_key, epoch_ms(started_at) FROM runs "
                "WHERE status = 'running'"
            ).fetchall()
        }

    def split(
        self, table: str, rows_by_key: Mapping[Key, dict[str, Any]]
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
        """The rows with new keys (now held), those with keys held before, and those of a
        table whose keys are not kept."""
        held = self.keys[table]
        if held is None:
            return [], [], list(rows_by_key.values())
        new = [row for key, row in rows_by_key.items() if key not in held]
        known = [row for key, row in rows_by_key.items() if key in held]
        held.update(rows_by_key)
        if len(held) > MAX_KEYS:
            self.keys[table] = None
        return new, known, []

    def note_runs(self, rows: Iterable[dict[str, Any]]) -> None:
        """Run rows as merged for one batch, the way the table merges them."""
        for row in rows:
            key, status = (row["gateway"], row["run_id"]), row.get("status")
            if status in TERMINAL_STATUSES:
                self.running.pop(key, None)
                continue
            held = self.running.get(key)
            if held is None and status != "running":
                continue
            session_key = row.get("session_key") or (held[0] if held else None)
            started = row.get("started_at")
            if started is None and held is not None:
                started = held[1]
            if session_key is not None:
                self.running[key] = (session_key, started)

    def idle_with_runs(self, idle: Mapping[Key, int]) -> dict[Key, int]:
        """Of the sessions shown idle ((gateway, session key) -> as of), those with a run that
        may be running and began before then."""
        return {
            (gateway, session_key): version
            for (gateway, _), (session_key, started) in self.running.items()
            if started is not None
            and (version := idle.get((gateway, session_key))) is not None
            and started < version
        }

    def checked(self, idle: Mapping[Key, int]) -> None:
        """The table has no running run left on these sessions that began before their time."""
        for key, (session_key, started) in list(self.running.items()):
            version = idle.get((key[0], session_key))
            if version is not None and started is not None and started < version:
                del self.running[key]

    def ended(self, runs: Iterable[Key]) -> None:
        for key in runs:
            self.running.pop(key, None)
