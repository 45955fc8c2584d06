"""What the widgets show, read from the store in one query each and packed column by column.

A snapshot is UTF-8 JSON of `{"columns": [...], "data": {column: [values...]}}` — columnar,
so 2,000 agents cost one list per column, not 2,000 dicts.
"""

from __future__ import annotations

import json
import math
from typing import Any

import pyarrow as pa

from ocnb.store import FleetStore

SPARK_MINUTES = 30

AGENTS = f"""
WITH recent AS (
    SELECT gateway, agent_id,
           (epoch(now()) - epoch(received_at)) // 60 AS minutes_ago, count(*) AS n
    FROM events
    WHERE agent_id IS NOT NULL AND received_at >= now() - INTERVAL {SPARK_MINUTES} MINUTE
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


def agents_snapshot(store: FleetStore) -> bytes:
    return pack(store.arrow(AGENTS))


def sessions_snapshot(store: FleetStore, agent: str, gateway: str | None = None) -> bytes:
    return pack(store.arrow(SESSIONS, {"agent": agent, "gateway": gateway}))


def pack(table: pa.Table) -> bytes:
    """A table as columnar JSON; NaN and infinities become null."""
    data = {
        name: [_clean(v) for v in table.column(name).to_pylist()] for name in table.column_names
    }
    return json.dumps({"columns": table.column_names, "data": data}, separators=(",", ":")).encode()


def unpack(snapshot: bytes) -> list[dict[str, Any]]:
    """Rows of a packed snapshot (for the static HTML view and for tests)."""
    if not snapshot:
        return []
    decoded = json.loads(snapshot)
    columns, data = decoded["columns"], decoded["data"]
    count = len(data[columns[0]]) if columns else 0
    return [{name: data[name][i] for name in columns} for i in range(count)]


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
