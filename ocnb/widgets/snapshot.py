"""What the widgets show, read from the store in one query each, sent as Arrow IPC streams.

The browser side decodes them with `arrow.js` (a small reader, no dependency), so 2,000 agents
cost one typed buffer per column rather than 2,000 JSON objects.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from ocnb.store import FleetStore

SPARK_MINUTES = 30

AGENTS = f"""
WITH recent AS (  -- by clock minute: a snapshot changes with the minute, not every second
    SELECT gateway, agent_id,
           (floor(epoch(now()) / 60) - floor(epoch(occurred_at) / 60))::INTEGER AS minutes_ago,
           count(*) AS n
    FROM events
    WHERE agent_id IS NOT NULL AND occurred_at >= now() - INTERVAL {SPARK_MINUTES + 1} MINUTE
      AND occurred_at <= now()
    GROUP BY ALL
),
spark AS (
    SELECT a.gateway, a.agent_id, list(coalesce(r.n, 0) ORDER BY m.i) AS activity
    FROM agents a CROSS JOIN range({SPARK_MINUTES}) AS m(i)
    LEFT JOIN recent r
      ON r.gateway = a.gateway AND r.agent_id = a.agent_id
     AND r.minutes_ago = {SPARK_MINUTES} - 1 - m.i
    GROUP BY ALL
),
phase AS (
    SELECT gateway, run_id AS current_run, arg_max(
        coalesce(json_extract_string(payload, '$.data.phase'),
                 json_extract_string(payload, '$.state')),
        received_at) AS run_phase
    FROM events WHERE event IN ('agent', 'chat') AND run_id IS NOT NULL
      AND received_at >= now() - INTERVAL 1 HOUR
    GROUP BY ALL
)
SELECT c.gateway, c.agent_id, c.name, c.emoji, c.status, c.current_session, c.current_run,
       p.run_phase, c.model, epoch_ms(c.last_activity) AS last_activity_ms, c.sessions,
       c.tokens_today, c.cost_today, c.tokens_total, c.cost_total, c.last_run_error,
       coalesce(s.activity, []) AS activity
FROM agent_cards c
LEFT JOIN spark s USING (gateway, agent_id)
LEFT JOIN phase p USING (gateway, current_run)
ORDER BY c.gateway, c.agent_id
"""  # noqa: S608 - only the constant SPARK_MINUTES is formatted in

SESSIONS = """
SELECT session_key, status, has_active_run, model, label, input_tokens, output_tokens,
       estimated_cost_usd, epoch_ms(updated_at) AS updated_ms, last_run_error
FROM sessions WHERE NOT deleted AND agent_id = $agent AND ($gateway IS NULL OR gateway = $gateway)
ORDER BY updated_at DESC NULLS LAST LIMIT 500
"""


GATEWAY_STATUSES = "SELECT gateway, status FROM gateways"


def agents_snapshot(store: FleetStore) -> bytes:
    return pack(store.arrow(AGENTS))


def gateway_statuses(store: FleetStore) -> dict[str, str]:
    """Each gateway's status as its feed last told the store (what `agent_cards` reads too)."""
    rows = store.arrow(GATEWAY_STATUSES).to_pylist()
    return {row["gateway"]: row["status"] for row in rows if row["status"] is not None}


def sessions_snapshot(store: FleetStore, agent: str, gateway: str | None = None) -> bytes:
    return pack(store.arrow(SESSIONS, {"agent": agent, "gateway": gateway}))


def pack(table: pa.Table) -> bytes:
    """A table as an Arrow IPC stream, in the types `arrow.js` reads."""
    table = table.cast(pa.schema([pa.field(f.name, _portable(f.type)) for f in table.schema]))
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    data: bytes = sink.getvalue().to_pybytes()
    return data


def unpack(snapshot: bytes) -> list[dict[str, Any]]:
    """Rows of a packed snapshot (for the static HTML view and for tests)."""
    if not snapshot:
        return []
    rows: list[dict[str, Any]] = pa.ipc.open_stream(snapshot).read_all().to_pylist()
    return rows


def _portable(kind: pa.DataType) -> pa.DataType:
    """Strings as utf8, integers as int64, decimals and floats as float64, lists of those."""
    if pa.types.is_list(kind) or pa.types.is_large_list(kind):  # sparkline counts: 32 bits do
        value = _portable(kind.value_type)
        return pa.list_(pa.int32() if pa.types.is_integer(value) else value)
    if pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_string_view(kind):
        return pa.string()
    if pa.types.is_integer(kind):
        return pa.int64()
    if pa.types.is_floating(kind) or pa.types.is_decimal(kind):
        return pa.float64()
    if pa.types.is_boolean(kind) or pa.types.is_null(kind):
        return kind
    raise TypeError(f"a widget snapshot cannot carry {kind}")
