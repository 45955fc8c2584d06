"""ingest.py: gateway payloads (v4 and v3) to store operations, fed in without sockets."""

from __future__ import annotations

import json
from typing import Any

import pytest

from ocnb.ingest import Ingestor, agent_id_of
from ocnb.ops import Append, Describe, RefetchRoster, ReplacePresence, Resync, Sweep, Upsert
from ocnb.protocol import Event

V4_ROW = {
    "key": "agent:alpha:main",
    "sessionId": "s-1",
    "agentId": "alpha",
    "kind": "direct",
    "status": "done",
    "hasActiveRun": False,
    "activeRunIds": [],
    "lastRunId": "r-1",
    "modelProvider": "fake",
    "model": "fast",
    "inputTokens": 100,
    "outputTokens": 20,
    "totalTokens": 100,
    "estimatedCostUsd": 0.25,
    "createdAt": 1_000,
    "updatedAt": 2_000,
    "startedAt": 1_500,
    "endedAt": 1_900,
    "runtimeMs": 400,
}


def ops_of(ops: list[Any], kind: type, table: str | None = None) -> list[Any]:
    return [op for op in ops if isinstance(op, kind) and (table is None or op.table == table)]


def test_agent_id_comes_from_the_session_key_when_v3_leaves_it_out() -> None:
    assert agent_id_of("agent:bravo:dm:42") == "bravo"
    assert agent_id_of("global") is None
    assert agent_id_of(None) is None


def test_a_v4_row_maps_to_session_columns() -> None:
    upsert = Ingestor("gw").session(V4_ROW, partial=False)
    assert upsert is not None
    row = upsert.row
    assert (row["gateway"], row["session_key"], row["agent_id"]) == (
        "gw",
        "agent:alpha:main",
        "alpha",
    )
    assert (row["status"], row["input_tokens"], row["estimated_cost_usd"]) == ("done", 100, 0.25)
    assert (row["version"], row["partial"], row["deleted"]) == (2_000, False, False)


def test_a_row_without_key_or_with_bad_types_is_handled() -> None:
    ingestor = Ingestor("gw")
    assert ingestor.session({"sessionId": "x"}, partial=False) is None
    upsert = ingestor.session(
        {"key": "agent:a:b", "inputTokens": "many", "updatedAt": True}, partial=True, version=7
    )
    assert upsert is not None
    assert upsert.row["input_tokens"] is None
    assert upsert.row["version"] == 7


def test_every_event_is_logged_with_its_ids() -> None:
    event = Event("mystery.event", {"sessionKey": "agent:alpha:main", "runId": "r-9"}, seq=4)
    ops = Ingestor("gw").event(event, 123).ops
    (log,) = ops_of(ops, Append, "events")
    assert log.row["agent_id"] == "alpha"
    assert (log.row["seq"], log.row["run_id"], log.row["event"]) == (4, "r-9", "mystery.event")
    assert json.loads(log.row["payload"]) == event.payload


def test_sessions_changed_v4_upserts_a_full_row_and_the_runs_outcome() -> None:
    payload = {
        "sessionKey": "agent:alpha:main",
        "phase": "end",
        "runId": "r-1",
        "ts": 2_000,
        "session": V4_ROW,
    }
    ops = Ingestor("gw", protocol=4).event(Event("sessions.changed", payload, seq=1), 5).ops
    (session,) = ops_of(ops, Upsert, "sessions")
    assert session.row["partial"] is False
    (run,) = ops_of(ops, Upsert, "runs")
    assert run.row["run_id"] == "r-1"
    assert (run.row["status"], run.row["input_tokens"], run.row["cost_usd"]) == ("done", 100, 0.25)


def test_v3_event_rows_are_partial() -> None:
    row = {k: v for k, v in V4_ROW.items() if k != "agentId"}
    payload = {"sessionKey": "agent:alpha:main", "phase": "start", "ts": 2_000, "session": row}
    ops = Ingestor("gw", protocol=3).event(Event("sessions.changed", payload), 5).ops
    (session,) = ops_of(ops, Upsert, "sessions")
    assert session.row["partial"] is True
    assert session.row["agent_id"] == "alpha"


def test_a_delete_marks_the_session_generation_gone() -> None:
    payload = {
        "sessionKey": "agent:alpha:main",
        "agentId": "alpha",
        "sessionId": "s-1",
        "reason": "delete",
        "ts": 9_000,
    }
    ops = Ingestor("gw").event(Event("sessions.changed", payload), 5).ops
    (gone,) = ops_of(ops, Upsert, "sessions")
    assert (gone.row["deleted"], gone.row["session_id"], gone.row["version"]) == (
        True,
        "s-1",
        9_000,
    )


def test_v3_create_without_a_row_still_records_the_session() -> None:
    payload = {
        "sessionKey": "agent:alpha:new",
        "reason": "create",
        "ts": 9_000,
        "sessionId": "s-9",
        "label": "new",
    }
    ops = Ingestor("gw", protocol=3).event(Event("sessions.changed", payload), 5).ops
    (created,) = ops_of(ops, Upsert, "sessions")
    assert (created.row["session_id"], created.row["label"], created.row["partial"]) == (
        "s-9",
        "new",
        True,
    )


def test_lifecycle_events_build_a_run() -> None:
    ingestor = Ingestor("gw", protocol=3)
    base = {"runId": "r-2", "sessionKey": "agent:bravo:main", "stream": "lifecycle", "ts": 10}
    start = ingestor.event(
        Event("agent", {**base, "data": {"phase": "start", "startedAt": 10}}), 0
    ).ops
    end = ingestor.event(
        Event("agent", {**base, "data": {"phase": "end", "aborted": True, "endedAt": 90}}), 0
    ).ops
    error = ingestor.event(
        Event("agent", {**base, "data": {"phase": "error", "error": "boom"}}), 0
    ).ops
    (started,), (ended,), (failed,) = (ops_of(o, Upsert, "runs") for o in (start, end, error))
    assert (started.row["status"], started.row["started_at"], started.row["agent_id"]) == (
        "running",
        10,
        "bravo",
    )
    assert (ended.row["status"], ended.row["ended_at"]) == ("killed", 90)
    assert (failed.row["status"], failed.row["error"]) == ("failed", "boom")


def test_assistant_messages_record_usage() -> None:
    message = {
        "role": "assistant",
        "timestamp": 50,
        "provider": "fake",
        "model": "fast",
        "usage": {
            "input": 10,
            "output": 5,
            "cacheRead": 0,
            "cacheWrite": 0,
            "totalTokens": 15,
            "cost": {"total": 0.5},
        },
        "__openclaw": {"id": "m-1", "runId": "r-3"},
    }
    payload = {
        "sessionKey": "agent:alpha:main",
        "messageId": "m-1",
        "message": message,
        "session": V4_ROW,
    }
    ops = Ingestor("gw").event(Event("session.message", payload, seq=3), 60).ops
    (usage,) = ops_of(ops, Append, "usage")
    assert (usage.row["message_id"], usage.row["run_id"], usage.row["cost_usd"]) == (
        "m-1",
        "r-3",
        0.5,
    )
    assert (usage.row["total_tokens"], usage.row["ts"]) == (15, 50)
    user = {**payload, "message": {"role": "user", "content": "hi"}}
    assert not ops_of(Ingestor("gw").event(Event("session.message", user), 60).ops, Append, "usage")
    huge = {"input": 2**63 - 1, "output": 2**63 - 1}  # no totalTokens: their sum is no BIGINT
    summed = {**payload, "message": {**message, "usage": huge}}
    (usage,) = ops_of(
        Ingestor("gw").event(Event("session.message", summed), 60).ops, Append, "usage"
    )
    assert usage.row["total_tokens"] is None


def test_agents_list_upserts_each_agent_and_sweeps_the_rest() -> None:
    ingestor = Ingestor("gw")
    payload = {
        "defaultId": "a",
        "agents": [
            {"id": "a", "name": "A", "identity": {"emoji": "🦊"}, "model": {"primary": "p/m"}},
            {"id": "b"},
        ],
    }
    ops = ingestor.agents(payload, as_of=100)
    upserts = ops_of(ops, Upsert, "agents")
    assert [(u.row["agent_id"], u.row["is_default"], u.row["model"]) for u in upserts] == [
        ("a", True, "p/m"),
        ("b", False, None),
    ]
    (sweep,) = ops_of(ops, Sweep)
    assert sweep.keep == {"a", "b"}
    assert ingestor.agent_ids == {"a", "b"}


def test_presence_events_replace_the_list_at_their_state_version() -> None:
    event = Event(
        "presence",
        {"presence": [{"host": "mac", "instanceId": "i-1", "ts": 5}]},
        seq=2,
        state_version={"presence": 7, "health": 1},
    )
    (replace,) = ops_of(Ingestor("gw").event(event, 0).ops, ReplacePresence)
    assert replace.version == 7
    assert replace.rows[0]["instance_id"] == "i-1"


def test_usage_baseline_reads_sessions_usage() -> None:
    payload = {
        "sessions": [
            {
                "key": "agent:a:main",
                "agentId": "a",
                "usage": {"input": 3, "output": 4, "totalTokens": 7, "totalCost": 0.1},
            },
            {"key": "agent:a:x", "usage": None},
        ]
    }
    (baseline,) = Ingestor("gw").usage_baseline(payload, as_of=9)
    assert (baseline.row["total_tokens"], baseline.row["cost_usd"], baseline.row["as_of"]) == (
        7,
        0.1,
        9,
    )


# --- follow-ups: what an event asks the feed to read next, decided from the payload alone -----

ROSTER = {"agents": [{"id": "alpha"}, {"id": "bravo"}], "defaultId": "alpha"}
KEY = "agent:alpha:main"
LIFECYCLE = {"runId": "r-1", "sessionKey": KEY, "stream": "lifecycle", "ts": 10}
FOLLOW_UPS = [  # (protocol, event, payload, follow-ups)
    (3, "sessions.changed", {"sessionKey": KEY, "reason": "update"}, [Describe(KEY)]),
    (4, "sessions.changed", {"sessionKey": KEY, "reason": "update", "session": V4_ROW}, []),
    (3, "sessions.changed", {"sessionKey": KEY, "reason": "delete"}, []),
    (
        3,
        "sessions.changed",
        {"reason": "reset"},
        [Resync("sessions.changed without a session key")],
    ),
    (4, "sessions.changed", {}, [Resync("sessions.changed without a session key")]),
    (3, "agent", {**LIFECYCLE, "data": {"phase": "end"}}, [Describe(KEY, run_ended=True)]),
    (3, "agent", {**LIFECYCLE, "data": {"phase": "error"}}, [Describe(KEY, run_ended=True)]),
    (3, "agent", {**LIFECYCLE, "data": {"phase": "start"}}, []),
    (4, "agent", {**LIFECYCLE, "data": {"phase": "end"}}, []),
    (3, "config.changed", {}, [RefetchRoster()]),
    (4, "config.changed", {}, [RefetchRoster()]),
    (4, "agent.config", {"agentId": "alpha"}, [RefetchRoster()]),
    (3, "health", {"agents": [{"agentId": "alpha"}, {"agentId": "charlie"}]}, [RefetchRoster()]),
    (4, "health", {"agents": [{"agentId": "alpha"}, {"agentId": "bravo"}]}, []),
    (3, "health", {"ok": True}, []),
    (4, "poll", {"reason": "gone", "sessionKey": KEY, "ts": 5}, []),
    (4, "tick", {"ts": 5}, []),
]


@pytest.mark.parametrize(("protocol", "name", "payload", "expected"), FOLLOW_UPS)
def test_events_ask_for_the_follow_ups_their_protocol_needs(
    protocol: int, name: str, payload: dict[str, Any], expected: list[Any]
) -> None:
    ingestor = Ingestor("gw", protocol=protocol)
    ingestor.synced("agents.list", ROSTER, received_at=1)
    assert list(ingestor.event(Event(name, payload), 20).follow_ups) == expected


def test_health_before_any_roster_asks_for_nothing() -> None:
    health = {"agents": [{"agentId": "alpha"}]}  # the sync reads the roster anyway
    assert not Ingestor("gw", protocol=3).event(Event("health", health), 20).follow_ups


def test_a_follow_up_does_not_replace_the_events_operations() -> None:
    payload = {**LIFECYCLE, "data": {"phase": "end", "endedAt": 90}}
    ops, follow_ups = Ingestor("gw", protocol=3).event(Event("agent", payload), 100)
    (run,) = ops_of(ops, Upsert, "runs")
    assert (run.row["status"], follow_ups) == ("done", (Describe(KEY, run_ended=True),))
    assert ops_of(ops, Append, "events")  # and the event is logged
