"""The store's tables and views, and how a new row merges into the one held under its key:
the rules once as SQL (the writer's statements) and once in Python (two upserts of one key in
the same batch). Text only: nothing here touches a database.
"""

from __future__ import annotations

from typing import Any

from ocnb.ops import ONLINE, TERMINAL_STATUSES

STATE_SCHEMA = """
CREATE TABLE IF NOT EXISTS gateways (
    gateway VARCHAR PRIMARY KEY, url VARCHAR, protocol INTEGER, server_version VARCHAR,
    status VARCHAR, connected_at TIMESTAMPTZ, last_error VARCHAR, presence_version BIGINT
);
CREATE TABLE IF NOT EXISTS agents (
    gateway VARCHAR, agent_id VARCHAR, name VARCHAR, emoji VARCHAR, model VARCHAR,
    workspace VARCHAR, is_default BOOLEAN, removed BOOLEAN, version BIGINT,
    PRIMARY KEY (gateway, agent_id)
);
CREATE TABLE IF NOT EXISTS sessions (
    gateway VARCHAR, session_key VARCHAR, session_id VARCHAR, agent_id VARCHAR, kind VARCHAR,
    label VARCHAR, display_name VARCHAR, status VARCHAR, has_active_run BOOLEAN,
    active_run_id VARCHAR, last_run_id VARCHAR, last_run_error VARCHAR,
    aborted_last_run BOOLEAN, model_provider VARCHAR, model VARCHAR, context_tokens BIGINT,
    input_tokens BIGINT, output_tokens BIGINT, total_tokens BIGINT, estimated_cost_usd DOUBLE,
    created_at TIMESTAMPTZ, updated_at TIMESTAMPTZ, started_at TIMESTAMPTZ,
    ended_at TIMESTAMPTZ, runtime_ms BIGINT, deleted BOOLEAN, partial BOOLEAN, version BIGINT,
    PRIMARY KEY (gateway, session_key)
);
CREATE TABLE IF NOT EXISTS runs (
    gateway VARCHAR, run_id VARCHAR, session_key VARCHAR, agent_id VARCHAR,
    started_at TIMESTAMPTZ, ended_at TIMESTAMPTZ, status VARCHAR, model_provider VARCHAR,
    model VARCHAR, input_tokens BIGINT, output_tokens BIGINT, cost_usd DOUBLE, error VARCHAR,
    PRIMARY KEY (gateway, run_id)
);
CREATE TABLE IF NOT EXISTS usage (
    gateway VARCHAR, message_id VARCHAR, session_key VARCHAR, agent_id VARCHAR,
    run_id VARCHAR, ts TIMESTAMPTZ, provider VARCHAR, model VARCHAR, input_tokens BIGINT,
    output_tokens BIGINT, cache_read_tokens BIGINT, cache_write_tokens BIGINT,
    total_tokens BIGINT, cost_usd DOUBLE, session_id VARCHAR, PRIMARY KEY (gateway, message_id)
);
ALTER TABLE usage ADD COLUMN IF NOT EXISTS session_id VARCHAR;  -- a store from 0.1
-- One row per session instance (`session_id`, '' when unknown) as listed under each key: a
-- reset gives a key a new instance, and a gateway may list an old one under another key.
CREATE TABLE IF NOT EXISTS session_usage (
    gateway VARCHAR, session_key VARCHAR, session_id VARCHAR, agent_id VARCHAR,
    input_tokens BIGINT, output_tokens BIGINT, total_tokens BIGINT, cost_usd DOUBLE,
    as_of TIMESTAMPTZ, PRIMARY KEY (gateway, session_key, session_id)
);
CREATE TABLE IF NOT EXISTS presence (
    gateway VARCHAR, instance_id VARCHAR, host VARCHAR, ip VARCHAR, platform VARCHAR,
    device_family VARCHAR, mode VARCHAR, version VARCHAR, reason VARCHAR, ts TIMESTAMPTZ
);
CREATE TABLE IF NOT EXISTS alerts (
    alert VARCHAR, subject VARCHAR, fired_at TIMESTAMPTZ, resolved_at TIMESTAMPTZ, detail VARCHAR,
    PRIMARY KEY (alert, subject, fired_at)
);
"""

LOG_SCHEMA = """
-- JSON text is kept as VARCHAR: DuckDB's JSON functions read it the same, and inserts skip
-- re-validating what orjson just wrote (3x faster ingest of the log).
-- occurred_at: when the event says it happened (its payload's `ts`), else when it arrived.
CREATE TABLE IF NOT EXISTS events (
    gateway VARCHAR, seq BIGINT, received_at TIMESTAMPTZ, event VARCHAR, agent_id VARCHAR,
    session_key VARCHAR, run_id VARCHAR, payload VARCHAR, state_version VARCHAR, ordinal BIGINT,
    occurred_at TIMESTAMPTZ
);
ALTER TABLE events ADD COLUMN IF NOT EXISTS occurred_at TIMESTAMPTZ;  -- a store from 0.1
CREATE TABLE IF NOT EXISTS sync_log (
    gateway VARCHAR, ordinal BIGINT, received_at TIMESTAMPTZ, as_of BIGINT, kind VARCHAR,
    payload VARCHAR
);
"""

_ONLINE = ", ".join(f"'{status}'" for status in ONLINE)  # the feeds' statuses (`ocnb.ops`)
VIEWS = f"""
-- Lifetime spend, per session instance: one `sessions.usage` total and the messages seen after
-- it. A gateway's total can fall behind what ocnb saw (2026.5.7 lists a reset or deleted
-- session's instance with no usage after a restart; 2026.9.6 lists a deleted one under
-- `agent:<id>:<sessionId>`), so of an instance's totals, and of none (every message seen), the
-- one that accounts for the most is taken: nothing spent is counted twice, nor forgotten.
CREATE OR REPLACE VIEW spend AS
WITH live AS (  -- each message's instance: its own, else its session's as it is now
    SELECT u.*, CASE WHEN coalesce(u.session_id, s.session_id, '') = '' THEN 'key:' || u.session_key
                     ELSE coalesce(u.session_id, s.session_id) END AS instance
    FROM usage u LEFT JOIN sessions s USING (gateway, session_key)
),
candidates AS (  -- the gateway's totals, and for each instance seen live: no total at all
    SELECT gateway, session_key, session_id, agent_id, total_tokens, cost_usd, as_of,
           CASE WHEN session_id = '' THEN 'key:' || session_key ELSE session_id END AS instance
    FROM session_usage
    UNION ALL
    SELECT DISTINCT gateway, NULL, NULL, NULL, 0, 0.0, '-infinity'::TIMESTAMPTZ, instance FROM live
),
reach AS (
    SELECT c.*, c.total_tokens + coalesce(sum(l.total_tokens), 0) AS reach_tokens,
           coalesce(c.cost_usd, 0) + coalesce(sum(l.cost_usd), 0) AS reach_cost
    FROM candidates c
    LEFT JOIN live l ON l.gateway = c.gateway AND l.instance = c.instance AND l.ts > c.as_of
    GROUP BY c.gateway, c.session_key, c.session_id, c.agent_id, c.total_tokens, c.cost_usd,
             c.as_of, c.instance
),
chosen AS (
    SELECT * FROM reach
    QUALIFY row_number() OVER (
        PARTITION BY gateway, instance
        ORDER BY reach_tokens DESC, reach_cost DESC, as_of DESC
    ) = 1
)
SELECT gateway, session_key, agent_id, total_tokens, cost_usd, as_of AS ts, true AS baseline
FROM chosen WHERE session_key IS NOT NULL
UNION ALL
SELECT l.gateway, l.session_key, l.agent_id, l.total_tokens, l.cost_usd, l.ts, false
FROM live l LEFT JOIN chosen c USING (gateway, instance)
WHERE c.as_of IS NULL OR l.ts > c.as_of;
CREATE OR REPLACE VIEW agent_cards AS
WITH live AS (SELECT * FROM sessions WHERE NOT deleted),
working AS (
    SELECT gateway, agent_id, arg_max(session_key, updated_at) AS current_session,
           arg_max_null(active_run_id, updated_at) AS current_run, count(*) AS active_sessions
    FROM live WHERE has_active_run GROUP BY ALL
),
last_run AS (
    -- arg_max_null: a later run without an error clears the error (arg_max skips nulls)
    SELECT gateway, agent_id, arg_max_null(status, ended_at) AS last_run_status,
           arg_max_null(last_run_error, ended_at) AS last_run_error
    FROM live WHERE ended_at IS NOT NULL GROUP BY ALL
),
counts AS (
    SELECT gateway, agent_id, count(*) AS sessions, max(updated_at) AS last_activity
    FROM live GROUP BY ALL
),
totals AS (  -- costs summed as decimals: a float sum's last digits depend on the plan's order
    SELECT gateway, agent_id, sum(total_tokens)::BIGINT AS tokens_total,
           sum(cost_usd::DECIMAL(18, 9))::DOUBLE AS cost_total,
           (sum(total_tokens) FILTER (WHERE NOT baseline AND ts >= current_date))::BIGINT
               AS tokens_today,
           (sum(cost_usd::DECIMAL(18, 9))
               FILTER (WHERE NOT baseline AND ts >= current_date))::DOUBLE AS cost_today
    FROM spend GROUP BY ALL
)
SELECT a.gateway, a.agent_id, a.name, a.emoji, a.model,
       CASE WHEN a.removed
                 OR coalesce(g.status, 'live') NOT IN ({_ONLINE})
            THEN 'offline'
            WHEN w.active_sessions > 0 THEN 'working'
            WHEN r.last_run_status = 'failed' THEN 'error'
            ELSE 'idle' END AS status,
       w.current_session, w.current_run, r.last_run_status, r.last_run_error,
       c.last_activity, coalesce(c.sessions, 0) AS sessions,
       coalesce(t.tokens_today, 0) AS tokens_today, coalesce(t.cost_today, 0) AS cost_today,
       coalesce(t.tokens_total, 0) AS tokens_total, coalesce(t.cost_total, 0) AS cost_total
FROM agents a
LEFT JOIN gateways g USING (gateway)
LEFT JOIN working w USING (gateway, agent_id)
LEFT JOIN last_run r USING (gateway, agent_id)
LEFT JOIN counts c USING (gateway, agent_id)
LEFT JOIN totals t USING (gateway, agent_id)
WHERE NOT a.removed;
"""  # noqa: S608 - our own constants

# After a full sync: a run still `running` here that began before the sync, on a session the
# gateway shows with no run (or another one), or gone, ended unseen (e.g. a gateway restart).
INTERRUPTED_RUNS = """
UPDATE runs SET status = 'interrupted'
WHERE gateway = $1 AND status = 'running' AND epoch_ms(started_at) < $2
  AND EXISTS (
      SELECT 1 FROM sessions s
      WHERE s.gateway = runs.gateway AND s.session_key = runs.session_key
        AND (s.deleted OR NOT coalesce(s.has_active_run, true)
             OR (s.active_run_id IS NOT NULL AND s.active_run_id <> runs.run_id))
  )
RETURNING gateway, run_id
"""

# A session that shows no active run as of `version` has no run going that began before then:
# one still `running` here ended unseen (its end, if it comes later, still wins).
IDLE_SESSIONS_RUNS = """
UPDATE runs SET status = 'interrupted'
FROM idle_sessions i
WHERE runs.gateway = i.gateway AND runs.session_key = i.session_key
  AND runs.status = 'running' AND epoch_ms(runs.started_at) < i.version
RETURNING runs.gateway, runs.run_id
"""

# Table -> its key columns (the newest row per key wins, by the rules below).
STATE_KEYS = {
    "gateways": ("gateway",),
    "agents": ("gateway", "agent_id"),
    "sessions": ("gateway", "session_key"),
    "runs": ("gateway", "run_id"),
    "usage": ("gateway", "message_id"),
    "session_usage": ("gateway", "session_key", "session_id"),
}
KEYS = {**STATE_KEYS, "alerts": ("alert", "subject", "fired_at")}
LOGS = ("events", "sync_log")  # append-only, no key
_RANK = {status: 1 for status in TERMINAL_STATUSES}  # a run's end outranks `running`


def merged(table: str, old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """Two upserts of one key within a batch, combined the way the SQL upsert would."""
    if table == "sessions":
        if new["version"] < old["version"]:
            return old
        if not new.get("partial"):
            return new
        return {**old, **{k: v for k, v in new.items() if v is not None}}
    row = {**old, **{k: v for k, v in new.items() if v is not None}}
    if table == "runs" and _RANK.get(old.get("status") or "", 0) > _RANK.get(
        new.get("status") or "", 0
    ):
        row["status"] = old["status"]
    return row


def _merge_sql(
    table: str, columns: list[str], new: str, *, full: bool = False
) -> tuple[list[str], str]:
    """How rows named `new` merge into held rows: the SET list and the condition (newest
    version wins; partial rows only fill in; `full`: session rows known to be complete)."""
    values = [c for c in columns if c not in KEYS[table]]
    if table == "usage":  # a message is counted once
        return [], "false"
    if table == "sessions":
        # A delete names the session generation it removes: never delete a replacement.
        guard = (
            f"{new}.version >= sessions.version AND (NOT {new}.deleted "
            f"OR {new}.session_id IS NULL OR sessions.session_id IS NULL "
            f"OR {new}.session_id = sessions.session_id)"
        )
        if full:
            return [f"{c} = {new}.{c}" for c in values], guard
        sets = [
            f"{c} = CASE WHEN {new}.partial THEN coalesce({new}.{c}, sessions.{c}) "
            f"ELSE {new}.{c} END"
            for c in values
            if c not in ("partial", "version", "deleted")
        ]
        sets += [
            f"deleted = {new}.deleted",
            f"partial = {new}.partial AND sessions.partial",
            f"version = {new}.version",
        ]
        return sets, guard
    if table in ("agents", "session_usage"):
        order = "version" if table == "agents" else "as_of"
        return [f"{c} = {new}.{c}" for c in values], f"{new}.{order} >= {table}.{order}"
    sets = [f"{c} = coalesce({new}.{c}, {table}.{c})" for c in values if c != "status"]
    if "status" in values:
        terminal = ", ".join(f"'{s}'" for s in sorted(TERMINAL_STATUSES))
        sets.append(
            f"status = CASE WHEN {table}.status IN ({terminal}) AND {new}.status = 'running' "
            f"THEN {table}.status ELSE coalesce({new}.status, {table}.status) END"
        )
    return sets, "true"


def insert_sql(table: str, columns: list[str]) -> str:
    """The INSERT of the rows of `batch`."""
    names = ", ".join(columns)
    return f"INSERT INTO {table} ({names}) SELECT {names} FROM batch"  # noqa: S608 - our own names


def update_sql(table: str, columns: list[str], *, full: bool = False) -> str:
    """The UPDATE that merges the rows of `batch` into the rows held under their keys."""
    sets, guard = _merge_sql(table, columns, "batch", full=full)
    match = " AND ".join(f"{table}.{k} = batch.{k}" for k in KEYS[table])
    return f"UPDATE {table} SET {', '.join(sets)} FROM batch WHERE {match} AND {guard}"  # noqa: S608 - our own names


def upsert_sql(table: str, columns: list[str]) -> str:
    """The INSERT that adds the rows of `batch` or merges them into held ones (for a table too
    large for the writer to know its keys)."""
    sets, guard = _merge_sql(table, columns, "excluded")
    names = ", ".join(columns)
    action = f"UPDATE SET {', '.join(sets)} WHERE {guard}" if sets else "NOTHING"
    return f"INSERT INTO {table} ({names}) SELECT {names} FROM batch ON CONFLICT DO {action}"  # noqa: S608 - our own names
