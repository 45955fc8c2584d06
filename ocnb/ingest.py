"""Gateway payloads (v3 and v4) turned into what they mean: store operations (plain Python
rows, no DuckDB) and follow-ups (reads the feed makes next: a roster re-read, a v3 describe,
a re-sync).

Every decision about a payload is made here, once: the feed only executes what comes back and
the store's writer applies the operations in batches. Nothing here does I/O, so it is tested by
feeding it payloads.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from ocnb.ops import (
    TERMINAL_STATUSES,
    Append,
    Describe,
    FollowUp,
    Ingested,
    Op,
    Rebase,
    RefetchRoster,
    ReplacePresence,
    Resync,
    Sweep,
    Upsert,
)
from ocnb.protocol import INT64_MAX, Event, Hello


def to_json(value: Any) -> str:
    """Compact JSON text for the store's JSON columns (orjson: the hot path of ingest; the
    standard library for what orjson refuses, such as integers beyond 64 bits)."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)


def agent_id_of(session_key: Any) -> str | None:
    """The agent id in a session key `agent:<agentId>:<rest>` (v3 events carry no agentId)."""
    if isinstance(session_key, str) and session_key.startswith("agent:"):
        agent_id = session_key.split(":", 2)[1]
        return agent_id or None
    return None


MAX_MS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z, the last moment DuckDB can hold


def _int(value: Any, limit: int = INT64_MAX) -> int | None:
    """A whole number within ±`limit` (a BIGINT column's range by default), else None."""
    if type(value) is float and math.isfinite(value):
        value = int(value)
    return value if type(value) is int and -limit <= value <= limit else None


def _ms(value: Any) -> int | None:
    """An epoch-ms timestamp DuckDB can hold, else None."""
    return _int(value, MAX_MS)


def usage_cache_status(payload: Any) -> str:
    """A `sessions.usage` answer's `cacheStatus.status`: `fresh`, `partial`, `stale` or
    `refreshing` (v4: the gateway's usage cache); `fresh` when it has none (v3)."""
    status = _dict(_dict(payload).get("cacheStatus")).get("status")
    return status if isinstance(status, str) else "fresh"


def _float(value: Any) -> float | None:
    if type(value) in (int, float) and math.isfinite(value):
        return float(value)
    return None


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _bool(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


@dataclass
class Ingestor:
    """Turns one gateway's payloads into operations; keeps what it needs to notice changes.

    Every input is logged with an `ordinal` (rising from the one given): events in `events`,
    everything else (sync answers, status changes) in `sync_log`. Fed those logs again in
    ordinal order, a fresh ingestor rebuilds the same state (see `ocnb.history`, which replays
    with `logs=False`: the inputs are logged already).
    """

    gateway: str
    protocol: int = 4
    agent_ids: frozenset[str] = field(default_factory=frozenset)
    default_agent_id: str | None = None
    ordinal: int = 0
    logs: bool = True

    def _next_ordinal(self) -> int:
        self.ordinal += 1
        return self.ordinal

    # --- logged inputs ----------------------------------------------------------------------

    def synced(self, kind: str, payload: Any, *, received_at: int, as_of: Any = None) -> list[Op]:
        """A non-event input (`SYNC_KINDS`), logged, then turned into operations; `as_of` is the
        time the answer describes (when it was received, if not given or not a time DuckDB can
        hold: it may come from the gateway, e.g. `sessions.usage`'s `updatedAt`)."""
        described = _ms(as_of)
        as_of = received_at if described is None else described
        ops = _SYNC_HANDLERS[kind](self, payload, as_of)
        if not self.logs:
            return ops
        entry = {
            "gateway": self.gateway,
            "ordinal": self._next_ordinal(),
            "received_at": received_at,
            "as_of": as_of,
            "kind": kind,
            "payload": to_json(payload),
        }
        return [Append("sync_log", entry), *ops]

    def hello(self, hello: Hello, url: str, now_ms: int) -> list[Op]:
        """What `hello-ok` tells: the gateway itself and its presence snapshot (logged without
        the hello's auth block)."""
        snapshot = hello.snapshot
        versions = _dict(snapshot.get("stateVersion"))
        presence = snapshot.get("presence")
        facts = {
            "url": url,
            "protocol": hello.protocol,
            "serverVersion": hello.server_version,
            "presence": presence if isinstance(presence, list) else None,
            "presenceVersion": _int(versions.get("presence")) or 0,
        }
        return self.synced("hello", facts, received_at=now_ms)

    def _hello(self, facts: Any, now_ms: int) -> list[Op]:
        facts = _dict(facts)
        self.protocol = _int(facts.get("protocol")) or self.protocol
        ops: list[Op] = [
            self.gateway_row(
                url=_str(facts.get("url")),
                protocol=self.protocol,
                server_version=_str(facts.get("serverVersion")),
                connected_at=now_ms,
            )
        ]
        presence = facts.get("presence")
        if isinstance(presence, list):
            ops.append(self.presence(presence, _int(facts.get("presenceVersion")) or 0))
        return ops

    def _page(self, page: Any, as_of: int) -> list[Op]:
        return list(self.sessions_page(page))

    def _resync(self, payload: Any, as_of: int) -> list[Op]:
        return [Rebase(self.gateway, as_of)]

    def _swept(self, payload: Any, started: int) -> list[Op]:
        keep = _dict(payload).get("keep")
        keys = frozenset(k for k in keep if isinstance(k, str)) if isinstance(keep, list) else None
        return [] if keys is None else [Sweep("sessions", self.gateway, keys, started)]

    def _described(self, row: Any, version: int) -> list[Op]:
        upsert = self.session(row, partial=False, version=version)
        return [] if upsert is None else [upsert]

    def _status(self, payload: Any, now_ms: int) -> list[Op]:
        payload = _dict(payload)
        return [
            self.gateway_row(
                status=_str(payload.get("status")), last_error=_str(payload.get("lastError"))
            )
        ]

    # --- session rows ---------------------------------------------------------------------------

    def session(self, row: Any, *, partial: bool, version: int | None = None) -> Upsert | None:
        """A session row from `sessions.list`, `sessions.describe` or an event's `session`."""
        row = _dict(row)
        key = _str(row.get("key"))
        if key is None:
            return None
        updated = _ms(row.get("updatedAt"))
        active = row.get("activeRunIds")
        return Upsert(
            "sessions",
            {
                "gateway": self.gateway,
                "session_key": key,
                "session_id": _str(row.get("sessionId")),
                "agent_id": _str(row.get("agentId")) or agent_id_of(key),
                "kind": _str(row.get("kind")),
                "label": _str(row.get("label")),
                "display_name": _str(row.get("displayName")),
                "status": _str(row.get("status")),
                "has_active_run": _bool(row.get("hasActiveRun")),
                "active_run_id": _str(active[0]) if isinstance(active, list) and active else None,
                "last_run_id": _str(row.get("lastRunId")),
                "last_run_error": _str(row.get("lastRunError")),
                "aborted_last_run": _bool(row.get("abortedLastRun")),
                "model_provider": _str(row.get("modelProvider")),
                "model": _str(row.get("model")),
                "context_tokens": _int(row.get("contextTokens")),
                "input_tokens": _int(row.get("inputTokens")),
                "output_tokens": _int(row.get("outputTokens")),
                "total_tokens": _int(row.get("totalTokens")),
                "estimated_cost_usd": _float(row.get("estimatedCostUsd")),
                "created_at": _ms(row.get("createdAt")),
                "updated_at": updated,
                "started_at": _ms(row.get("startedAt")),
                "ended_at": _ms(row.get("endedAt")),
                "runtime_ms": _int(row.get("runtimeMs")),
                "deleted": False,
                "partial": partial,
                "version": updated if updated is not None else (version or 0),
            },
        )

    def sessions_page(self, payload: Any) -> list[Upsert]:
        """Rows of one `sessions.list` page (complete rows on both protocols)."""
        rows = _dict(payload).get("sessions")
        ops = [self.session(row, partial=False) for row in rows] if isinstance(rows, list) else []
        return [op for op in ops if op is not None]

    def session_gone(self, key: str, ts: int, session_id: str | None) -> Upsert:
        return Upsert(
            "sessions",
            {
                "gateway": self.gateway,
                "session_key": key,
                "session_id": session_id,
                "agent_id": agent_id_of(key),
                "deleted": True,
                "partial": True,
                "version": ts,
            },
        )

    # --- agents and the gateway -------------------------------------------------------------

    def agents(self, payload: Any, as_of: int) -> list[Op]:
        """The roster from `agents.list`: every agent upserted, the rest swept as removed."""
        payload = _dict(payload)
        default_id = _str(payload.get("defaultId"))
        ops: list[Op] = []
        keep: set[str] = set()
        entries = payload.get("agents")
        for entry in entries if isinstance(entries, list) else []:
            entry = _dict(entry)
            agent_id = _str(entry.get("id"))
            if agent_id is None:
                continue
            keep.add(agent_id)
            identity = _dict(entry.get("identity"))
            ops.append(
                Upsert(
                    "agents",
                    {
                        "gateway": self.gateway,
                        "agent_id": agent_id,
                        "name": _str(entry.get("name")) or _str(identity.get("name")),
                        "emoji": _str(identity.get("emoji")),
                        "model": _str(_dict(entry.get("model")).get("primary")),
                        "workspace": _str(entry.get("workspace")),
                        "is_default": agent_id == default_id,
                        "removed": False,
                        "version": as_of,
                    },
                )
            )
        self.agent_ids, self.default_agent_id = frozenset(keep), default_id
        ops.append(Sweep("agents", self.gateway, frozenset(keep), as_of + 1))
        return ops

    def gateway_row(self, **fields: Any) -> Upsert:
        return Upsert("gateways", {"gateway": self.gateway, **fields})

    def presence(self, entries: list[Any], version: int) -> ReplacePresence:
        rows = []
        for entry in entries:
            entry = _dict(entry)
            rows.append(
                {
                    "gateway": self.gateway,
                    "instance_id": _str(entry.get("instanceId")) or _str(entry.get("host")),
                    "host": _str(entry.get("host")),
                    "ip": _str(entry.get("ip")),
                    "platform": _str(entry.get("platform")),
                    "device_family": _str(entry.get("deviceFamily")),
                    "mode": _str(entry.get("mode")),
                    "version": _str(entry.get("version")),
                    "reason": _str(entry.get("reason")),
                    "ts": _ms(entry.get("ts")),
                }
            )
        return ReplacePresence(self.gateway, version, rows)

    def usage_baseline(self, payload: Any, as_of: int) -> list[Op]:
        """Lifetime tokens and cost per session from `sessions.usage`, as of `as_of`."""
        ops: list[Op] = []
        sessions = _dict(payload).get("sessions")
        for entry in sessions if isinstance(sessions, list) else []:
            entry = _dict(entry)
            key, usage = _str(entry.get("key")), _dict(entry.get("usage"))
            if key is None or not usage:
                continue
            row = {
                "gateway": self.gateway,
                "session_key": key,
                "agent_id": _str(entry.get("agentId")) or agent_id_of(key),
                "input_tokens": _int(usage.get("input")),
                "output_tokens": _int(usage.get("output")),
                "total_tokens": _int(usage.get("totalTokens")),
                "cost_usd": _float(usage.get("totalCost")),
                "as_of": as_of,
                "session_id": _str(entry.get("sessionId")) or _str(usage.get("sessionId")) or "",
            }
            ops.append(Upsert("session_usage", row))
        return ops

    def health_agent_ids(self, payload: Any) -> frozenset[str] | None:
        """The agent ids a `health` payload lists (how v3 reveals roster changes)."""
        agents = _dict(payload).get("agents")
        if not isinstance(agents, list):
            return None
        return frozenset(a["agentId"] for a in agents if isinstance(_dict(a).get("agentId"), str))

    # --- events ------------------------------------------------------------------------------

    def event(self, event: Event, received_at: int) -> Ingested:
        """Every event goes to the log; the ones that describe state also update it, and the
        ones that imply more than they carry ask for follow-ups."""
        data = _dict(event.payload)
        handler = _EVENT_HANDLERS.get(event.event)
        found = Ingested([]) if handler is None else handler(self, event, data, received_at)
        if self.logs:
            found.ops.insert(0, self._logged_event(event, data, received_at))
        return found

    def _logged_event(self, event: Event, data: dict[str, Any], received_at: int) -> Append:
        session_key = _str(data.get("sessionKey"))
        return Append(
            "events",
            {
                "gateway": self.gateway,
                "seq": event.seq,
                "received_at": received_at,
                "event": event.event,
                "agent_id": _str(data.get("agentId")) or agent_id_of(session_key),
                "session_key": session_key,
                "run_id": _str(data.get("runId")),
                "payload": to_json(event.payload),
                "state_version": None
                if event.state_version is None
                else to_json(event.state_version),
                "ordinal": self._next_ordinal(),
                # never after its arrival: a gateway's clock ahead of ours, or a demo's
                "occurred_at": min(_ms(data.get("ts")) or received_at, received_at),
            },
        )

    def _sessions_changed(self, event: Event, data: dict[str, Any], now: int) -> Ingested:
        key = _str(data.get("sessionKey"))
        ts = _ms(data.get("ts")) or now
        if key is None:  # a rowless notice: the list as a whole changed
            return Ingested([], (Resync("sessions.changed without a session key"),))
        if data.get("reason") == "delete":
            return Ingested([self.session_gone(key, ts, _str(data.get("sessionId")))])
        row = data.get("session")
        ops = self._event_row(row, ts)
        if row is None and data.get("reason") == "create":  # v3: a new session without a row
            upsert = self.session({"key": key, **data}, partial=True, version=ts)
            ops += [upsert] if upsert is not None else []
        phase, run_id = data.get("phase"), _str(data.get("runId"))
        if phase in ("end", "error") and run_id and isinstance(row, dict):
            ops.append(self._run_outcome(run_id, key, row))
        # v3 rows are partial and can be stale: read the whole row
        return Ingested(ops, (Describe(key),) if self.protocol < 4 else ())

    def _event_row(self, row: Any, version: int) -> list[Op]:
        """The session row an event carries: complete on v4, partial and possibly stale on v3."""
        upsert = self.session(row, partial=self.protocol < 4, version=version)
        return [upsert] if upsert is not None else []

    def _run_outcome(self, run_id: str, key: str, row: dict[str, Any]) -> Upsert:
        """The session row after a run ends describes that run: tokens, cost, status, error."""
        status = _str(row.get("status"))
        return self._run(
            run_id,
            key,
            agent_id=_str(row.get("agentId")),
            status=status if status in TERMINAL_STATUSES else None,
            started_at=_ms(row.get("startedAt")),
            ended_at=_ms(row.get("endedAt")),
            model_provider=_str(row.get("modelProvider")),
            model=_str(row.get("model")),
            input_tokens=_int(row.get("inputTokens")),
            output_tokens=_int(row.get("outputTokens")),
            cost_usd=_float(row.get("estimatedCostUsd")),
            error=_str(row.get("lastRunError")),
        )

    def _session_message(self, event: Event, data: dict[str, Any], now: int) -> Ingested:
        ops = self._event_row(data.get("session"), now)
        message = _dict(data.get("message"))
        usage = _dict(message.get("usage"))
        key = _str(data.get("sessionKey"))
        if message.get("role") != "assistant" or not usage or key is None:
            return Ingested(ops)
        meta = _dict(message.get("__openclaw"))
        message_id = _str(data.get("messageId")) or _str(meta.get("id"))
        if message_id is None:
            return Ingested(ops)
        tokens_in, tokens_out = _int(usage.get("input")), _int(usage.get("output"))
        total = _int(usage.get("totalTokens"))
        if total is None and tokens_in is not None and tokens_out is not None:
            total = _int(tokens_in + tokens_out)
        ops.append(
            Append(
                "usage",
                {
                    "gateway": self.gateway,
                    "message_id": message_id,
                    "session_key": key,
                    "agent_id": _str(data.get("agentId")) or agent_id_of(key),
                    "run_id": _str(data.get("runId")) or _str(meta.get("runId")),
                    "ts": _ms(message.get("timestamp")) or now,
                    "provider": _str(message.get("provider")),
                    "model": _str(message.get("model")),
                    "input_tokens": tokens_in,
                    "output_tokens": tokens_out,
                    "cache_read_tokens": _int(usage.get("cacheRead")),
                    "cache_write_tokens": _int(usage.get("cacheWrite")),
                    "total_tokens": total,
                    "cost_usd": _float(_dict(usage.get("cost")).get("total")),
                    "session_id": _str(data.get("sessionId"))
                    or _str(_dict(data.get("session")).get("sessionId")),
                },
            )
        )
        return Ingested(ops)

    def _agent(self, event: Event, data: dict[str, Any], now: int) -> Ingested:
        body, key = _dict(data.get("data")), _str(data.get("sessionKey"))
        follow_ups: tuple[FollowUp, ...] = ()
        if self.protocol < 4 and body.get("phase") in ("end", "error") and key is not None:
            follow_ups = (Describe(key, run_ended=True),)  # v3 events carry no session row
        return Ingested(self._run_progress(data, body, now), follow_ups)

    def _run_progress(self, data: dict[str, Any], body: dict[str, Any], now: int) -> list[Op]:
        """What an `agent` event's stream tells of its run: start, model, tokens, end."""
        run_id, key = _str(data.get("runId")), _str(data.get("sessionKey"))
        if run_id is None or key is None:
            return []
        stream = data.get("stream")
        ts = _ms(data.get("ts")) or now
        agent_id = _str(data.get("agentId"))
        if stream == "usage":
            return [
                self._run(
                    run_id, key, agent_id=agent_id, output_tokens=_int(body.get("outputTokens"))
                )
            ]
        if stream != "lifecycle":
            return []
        phase = body.get("phase")
        if phase == "start":
            started = _ms(body.get("startedAt")) or ts
            return [self._run(run_id, key, agent_id=agent_id, started_at=started, status="running")]
        if phase == "model":
            return [
                self._run(
                    run_id,
                    key,
                    agent_id=agent_id,
                    model_provider=_str(body.get("provider")),
                    model=_str(body.get("model")),
                )
            ]
        if phase in ("end", "error"):
            failed = phase == "error"
            status = "failed" if failed else "killed" if body.get("aborted") else "done"
            return [
                self._run(
                    run_id,
                    key,
                    agent_id=agent_id,
                    started_at=_ms(body.get("startedAt")),
                    ended_at=_ms(body.get("endedAt")) or ts,
                    status=status,
                    error=_str(body.get("error")) if failed else None,
                )
            ]
        return []

    def _chat(self, event: Event, data: dict[str, Any], now: int) -> Ingested:
        run_id, key = _str(data.get("runId")), _str(data.get("sessionKey"))
        state = data.get("state")
        if run_id is None or key is None or state not in ("error", "aborted"):
            return Ingested([])
        agent_id = _str(data.get("agentId"))
        # the gateway's clock only: a run's start and end must be comparable
        ended = _ms(data.get("ts")) or _ms(_dict(data.get("message")).get("timestamp"))
        if state == "aborted":
            killed = self._run(run_id, key, agent_id=agent_id, status="killed", ended_at=ended)
            return Ingested([killed])
        error = _str(data.get("errorMessage"))
        failed = self._run(
            run_id, key, agent_id=agent_id, status="failed", error=error, ended_at=ended
        )
        return Ingested([failed])

    def _poll(self, event: Event, data: dict[str, Any], now: int) -> Ingested:
        """A change seen by HTTP polling (`ocnb.poll`): slim session rows only fill in."""
        return Ingested(self._polled(data, now))

    def _polled(self, data: dict[str, Any], now: int) -> list[Op]:
        reason, ts = data.get("reason"), _ms(data.get("ts")) or now
        key = _str(data.get("sessionKey"))
        if reason == "gone" and key is not None:
            return [self.session_gone(key, ts, _str(data.get("sessionId")))]
        row = _dict(data.get("session"))
        if reason in ("new", "changed") and row:
            upsert = self.session(
                {**row, "hasActiveRun": row.get("status") == "running"}, partial=True, version=ts
            )
            return [upsert] if upsert is not None else []
        agent = _dict(data.get("agent"))
        agent_id = _str(agent.get("id"))
        if reason == "agent" and agent_id is not None and agent_id not in self.agent_ids:
            self.agent_ids |= {agent_id}  # richer rows from agents.list are never overwritten
            model = agent.get("model")
            row = {
                "gateway": self.gateway,
                "agent_id": agent_id,
                "name": _str(agent.get("name")),
                "model": _str(model) or _str(_dict(model).get("primary")),
                "removed": False,
                "version": ts,
            }
            return [Upsert("agents", row)]
        return []

    def _presence(self, event: Event, data: dict[str, Any], now: int) -> Ingested:
        entries = data.get("presence") if data else event.payload
        if not isinstance(entries, list):
            return Ingested([])
        version = _int(_dict(event.state_version).get("presence")) or 0
        return Ingested([self.presence(entries, version)])

    def _roster_changed(self, event: Event, data: dict[str, Any], now: int) -> Ingested:
        """`config.changed` / `agent.config`: agents may have come or gone."""
        return Ingested([], (RefetchRoster(),))

    def _health(self, event: Event, data: dict[str, Any], now: int) -> Ingested:
        """How v3 reveals roster changes: `health` lists other agents than the roster's."""
        ids = self.health_agent_ids(data)
        changed = ids is not None and bool(self.agent_ids) and ids != self.agent_ids
        return Ingested([], (RefetchRoster(),) if changed else ())

    def _run(self, run_id: str, session_key: str, **fields: Any) -> Upsert:
        row: dict[str, Any] = {
            "gateway": self.gateway,
            "run_id": run_id,
            "session_key": session_key,
        }
        row.update(fields)
        if row.get("agent_id") is None:
            row["agent_id"] = agent_id_of(session_key)
        return Upsert("runs", row)


_EVENT_HANDLERS: dict[str, Callable[[Ingestor, Event, dict[str, Any], int], Ingested]] = {
    "sessions.changed": Ingestor._sessions_changed,
    "session.message": Ingestor._session_message,
    "agent": Ingestor._agent,
    "chat": Ingestor._chat,
    "presence": Ingestor._presence,
    "poll": Ingestor._poll,
    "config.changed": Ingestor._roster_changed,
    "agent.config": Ingestor._roster_changed,
    "health": Ingestor._health,
}

_SYNC_HANDLERS: dict[str, Callable[[Ingestor, Any, int], list[Op]]] = {
    "hello": Ingestor._hello,
    "status": Ingestor._status,
    "agents.list": Ingestor.agents,
    "sessions.resync": Ingestor._resync,
    "sessions.list": Ingestor._page,
    "sessions.swept": Ingestor._swept,
    "sessions.usage": Ingestor.usage_baseline,
    "sessions.describe": Ingestor._described,
}
SYNC_KINDS = frozenset(_SYNC_HANDLERS)
