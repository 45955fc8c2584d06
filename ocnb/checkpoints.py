"""Checkpoints of the state tables, so that `fleet_at` replays only what came after one.

The store's writer notes what each batch changes. Every `every` logged inputs it copies the
rows changed since the last checkpoint (and the whole presence list) into the `checkpoints`
schema, inside that batch's transaction, with each gateway's last logged ordinal. The state
at checkpoint `c` is then, per key, the newest copy up to `c`; `restore` writes it into a
past store by SQL alone.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import duckdb
import pyarrow as pa

EVERY = 10_000  # logged inputs between checkpoints: fleet_at replays at most this many

SCHEMA = """
CREATE SCHEMA IF NOT EXISTS checkpoints;
CREATE TABLE IF NOT EXISTS checkpoints.taken (
    checkpoint BIGINT PRIMARY KEY, received_at TIMESTAMPTZ, taken_at TIMESTAMPTZ
);
CREATE TABLE IF NOT EXISTS checkpoints.positions (
    checkpoint BIGINT, gateway VARCHAR, ordinal BIGINT
);
"""

# The newest checkpoint of a catalog that holds nothing received after $until, and each
# gateway's position then.
CHOOSE = """
SELECT t.checkpoint, p.gateway, p.ordinal
FROM (SELECT max(checkpoint) AS checkpoint FROM {source}.checkpoints.taken
      WHERE received_at <= $until) t
JOIN {source}.checkpoints.positions p USING (checkpoint)
"""


class Checkpoints:
    """The writer's side: what changed since the last checkpoint, and taking the next one."""

    def __init__(self, con: duckdb.DuckDBPyConnection, keys: Mapping[str, tuple[str, ...]],
                 every: int = EVERY) -> None:  # fmt: skip
        """`keys`: the keyed state tables and their key columns (their copies live in the
        `checkpoints` schema under the same names)."""
        self.keys = dict(keys)
        self.every = every
        con.execute(SCHEMA)
        for table in (*self.keys, "presence"):
            con.execute(
                f"CREATE TABLE IF NOT EXISTS checkpoints.{table} AS "  # noqa: S608 - our own names
                f"SELECT 0::BIGINT AS checkpoint, * FROM main.{table} LIMIT 0"
            )
        self.last: int = _scalar(con, "SELECT coalesce(max(checkpoint), 0) FROM checkpoints.taken")
        logged = con.execute(
            "SELECT gateway, max(ordinal), max(epoch_ms(received_at)) FROM (SELECT gateway, "
            "ordinal, received_at FROM main.events UNION ALL SELECT gateway, ordinal, "
            "received_at FROM main.sync_log) GROUP BY gateway"
        ).fetchall()  # one scan of the logs at start-up
        self.positions: dict[str, int] = {gateway: ordinal for gateway, ordinal, _ in logged}
        self.received_at: int = max((ms for *_, ms in logged if ms is not None), default=0)
        self.inputs = 0
        self.everything = True  # the first checkpoint after opening copies every row
        self.changed: dict[str, set[tuple[Any, ...]]] = {table: set() for table in self.keys}
        self.whole: set[tuple[str, str]] = set()  # (table, gateway): every row may have changed

    def note(
        self,
        logged: Iterable[dict[str, Any]],
        changed: Mapping[str, Iterable[tuple[Any, ...]]],
        whole: Iterable[tuple[str, str]] = (),
    ) -> None:
        """What a batch changes: the log rows it appends, the keys it writes per table, the
        (table, gateway) pairs whose every row it may change (a sweep, a rebase). Noted again
        if the batch is retried: that does no harm."""
        for row in logged:
            self._logged(row)
        for table, keys in changed.items():
            if table in self.changed:
                self.changed[table].update(keys)
        self.whole.update(whole)

    def note_rows(self, table: str, keys: Iterable[tuple[Any, ...]]) -> None:
        """Rows of `table` the store changed by itself, beyond what the ops say."""
        self.changed[table].update(keys)

    def _logged(self, row: dict[str, Any]) -> None:
        gateway, ordinal, received_at = row["gateway"], row.get("ordinal"), row.get("received_at")
        if ordinal is not None:
            self.positions[gateway] = max(ordinal, self.positions.get(gateway, 0))
        if received_at is not None:
            self.received_at = max(self.received_at, received_at)
        self.inputs += 1

    def due(self) -> bool:
        return self.inputs >= self.every

    def take(self, con: duckdb.DuckDBPyConnection) -> None:
        """Write the next checkpoint in the caller's transaction; call `taken()` after its
        commit."""
        checkpoint = self.last + 1
        for table, keys in self.keys.items():
            if self.everything:
                self._copy(con, table, checkpoint, "")
                continue
            changed = self.changed[table]
            if changed:
                changed_keys = pa.table(list(zip(*changed, strict=True)), names=list(keys))
                join = f" SEMI JOIN changed_keys USING ({', '.join(keys)})"
                self._copy(con, table, checkpoint, join, changed_keys)
            gateways = sorted(g for t, g in self.whole if t == table)
            if gateways:
                where = " WHERE gateway IN (SELECT unnest($gateways))"
                self._copy(con, table, checkpoint, where, gateways=gateways)
        self._copy(con, "presence", checkpoint, "")
        if self.positions:
            con.executemany(
                "INSERT INTO checkpoints.positions VALUES (?, ?, ?)",
                [[checkpoint, gateway, ordinal] for gateway, ordinal in self.positions.items()],
            )
        con.execute(
            "INSERT INTO checkpoints.taken VALUES (?, ?, ?)",
            [checkpoint, _utc(self.received_at), datetime.now(UTC)],
        )

    def taken(self) -> None:
        """The checkpoint's transaction committed: start noting afresh."""
        self.last += 1
        self.inputs = 0
        self.everything = False
        self.whole.clear()
        for changed in self.changed.values():
            changed.clear()

    @staticmethod
    def _copy(
        con: duckdb.DuckDBPyConnection,
        table: str,
        checkpoint: int,
        rest: str,
        changed_keys: pa.Table | None = None,
        **params: Any,
    ) -> None:
        """Copy the table's rows (those `rest` - a join or a filter - keeps) as `checkpoint`.
        `rest` may join `changed_keys` (DuckDB reads it from this frame's locals)."""
        con.execute(
            f"INSERT INTO checkpoints.{table} SELECT $c, {table}.* FROM main.{table}{rest}",  # noqa: S608
            {"c": checkpoint, **params},
        )


def restore(
    con: duckdb.DuckDBPyConnection,
    source: str,
    keys: Mapping[str, tuple[str, ...]],
    until: Any,
) -> dict[str, int]:
    """Write into this cursor's catalog the state of the newest checkpoint of the `source`
    catalog that holds nothing received after `until`; returns each gateway's position then
    (empty when there is no such checkpoint)."""
    rows = con.execute(CHOOSE.format(source=source), {"until": until}).fetchall()
    if not rows:
        return {}
    checkpoint = rows[0][0]
    for table, key in keys.items():
        con.execute(
            f"INSERT INTO {table} SELECT * EXCLUDE (checkpoint) "  # noqa: S608 - our own names
            f"FROM {source}.checkpoints.{table} WHERE checkpoint <= $c "
            f"QUALIFY row_number() OVER (PARTITION BY {', '.join(key)} "
            "ORDER BY checkpoint DESC) = 1",
            {"c": checkpoint},
        )
    con.execute(
        f"INSERT INTO presence SELECT * EXCLUDE (checkpoint) "  # noqa: S608
        f"FROM {source}.checkpoints.presence WHERE checkpoint = $c",
        {"c": checkpoint},
    )
    return {gateway: ordinal for _, gateway, ordinal in rows}


def _scalar(con: duckdb.DuckDBPyConnection, query: str) -> int:
    row = con.execute(query).fetchone()
    return int(row[0]) if row else 0


def _utc(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)
