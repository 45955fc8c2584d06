"""Event history → tidy pandas frames, computed in DuckDB: runs, activity, tokens, cost, errors.

Every function takes a `Fleet` and reads its store as it is now; time buckets are given the
pandas way (`"5min"`, `"1h"`, `"1D"`).
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from ocnb.fleet import Fleet
from ocnb.history import past_store
from ocnb.times import as_utc

USAGE_GROUPS = {"agent": "agent_id", "model": "model", "gateway": "gateway"}
EVENT_GROUPS = {"agent": "agent_id", "event": "event", "gateway": "gateway"}


def fleet_at(fleet: Fleet, when: Any) -> Fleet:
    """A read-only `Fleet` (no gateways; close it when done, before `fleet`) holding the state
    `fleet`'s store had at `when` (any of `ocnb.times.TIME_FORMS`), rebuilt from its logs:
    every frame method and helper here works on it."""
    return Fleet(past_store(fleet.store, when))


def _bucket_us(every: str) -> int:
    """A pandas frequency string as microseconds (what DuckDB's `time_bucket` takes)."""
    try:
        width = pd.Timedelta(every)
    except ValueError as exc:
        raise ValueError(f"every={every!r} is not a duration such as '5min' or '1h'") from exc
    if width <= pd.Timedelta(0):
        raise ValueError(f"every={every!r} must be positive")
    return int(width / pd.Timedelta(microseconds=1))


def _group(by: str, groups: dict[str, str]) -> str:
    if by not in groups:
        raise ValueError(f"by={by!r}: choose one of {sorted(groups)}")
    return groups[by]


def runs(fleet: Fleet, agent: str | None = None, since: Any = None) -> pd.DataFrame:
    """One row per run: agent, session, start, end, duration, status, model, tokens, cost, error."""
    return fleet.sql(
        "SELECT gateway, agent_id, session_key, run_id, started_at, ended_at, "
        "epoch_ms(ended_at) - epoch_ms(started_at) AS duration_ms, status, model_provider, model, "
        "input_tokens, output_tokens, cost_usd, error FROM runs "
        "WHERE ($agent IS NULL OR agent_id = $agent) AND ($since IS NULL OR started_at >= $since) "
        "ORDER BY started_at NULLS LAST, run_id",
        agent=fleet.known_agent(agent),
        since=_timestamp(since),
    )


def activity(fleet: Fleet, every: str = "5min", by: str = "agent") -> pd.DataFrame:
    """Events per time bucket (of when each happened) and per agent (or event kind, gateway)."""
    column = _group(by, EVENT_GROUPS)
    return fleet.sql(
        f"SELECT time_bucket(to_microseconds($width), occurred_at) AS bucket, {column} AS {by}, "  # noqa: S608 - a fixed column
        "count(*) AS events FROM events WHERE occurred_at IS NOT NULL "
        f"AND ($by_agent = false OR {column} IS NOT NULL) "
        "GROUP BY ALL ORDER BY bucket, 2",
        width=_bucket_us(every),
        by_agent=by == "agent",
    )


def token_usage(fleet: Fleet, every: str = "1h", by: str = "agent") -> pd.DataFrame:
    """Tokens per time bucket, by agent, model or gateway, from per-message usage as seen."""
    sums = (
        "sum(input_tokens)::BIGINT AS input_tokens, sum(output_tokens)::BIGINT AS output_tokens, "
        "sum(total_tokens)::BIGINT AS total_tokens, count(*) AS messages"
    )
    return fleet.sql(f"{_usage_buckets(by, sums)} ORDER BY bucket, 2", width=_bucket_us(every))


def cost(fleet: Fleet, every: str = "1h", by: str = "agent") -> pd.DataFrame:
    """Cost in USD per time bucket, by agent, model or gateway, with a running total."""
    buckets = _usage_buckets(by, "sum(cost_usd) AS cost_usd")
    return fleet.sql(
        f"SELECT bucket, {by}, cost_usd, sum(cost_usd) OVER (PARTITION BY {by} ORDER BY bucket) "  # noqa: S608 - fixed names
        f"AS cumulative_usd FROM ({buckets}) ORDER BY bucket, 2",
        width=_bucket_us(every),
    )


def _usage_buckets(by: str, sums: str) -> str:
    """The `usage` table summed per `$width` bucket and per agent, model or gateway."""
    column = _group(by, USAGE_GROUPS)
    return (
        f"SELECT time_bucket(to_microseconds($width), ts) AS bucket, {column} AS {by}, {sums} "  # noqa: S608 - fixed names
        "FROM usage GROUP BY ALL"
    )


def errors(fleet: Fleet) -> pd.DataFrame:
    """Failed runs grouped by message: how often, since when, until when, on which agents."""
    return fleet.sql(
        "SELECT error, count(*) AS runs, min(ended_at) AS first_seen, max(ended_at) AS last_seen, "
        "list(DISTINCT agent_id ORDER BY agent_id) AS agents FROM runs "
        "WHERE status = 'failed' GROUP BY error ORDER BY runs DESC, error"
    )


def session_timeline(fleet: Fleet, key: str) -> pd.DataFrame:
    """Everything that happened to one session, in order: event, phase or state, run."""
    return fleet.sql(
        "SELECT occurred_at, received_at, seq, event, run_id, "
        "coalesce(json_extract_string(payload, '$.phase'), "
        "json_extract_string(payload, '$.data.phase'), json_extract_string(payload, '$.state'), "
        "json_extract_string(payload, '$.reason'), json_extract_string(payload, '$.stream')) "
        "AS what FROM events WHERE session_key = $key ORDER BY occurred_at, ordinal",
        key=key,
    )


def _timestamp(value: Any) -> pd.Timestamp | None:
    return None if value is None else as_utc(value)
