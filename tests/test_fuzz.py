"""Hostile input, generated: whatever a gateway sends, parsing and ingesting never break."""

from __future__ import annotations

import contextlib
import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ocnb.errors import ProtocolError
from ocnb.ingest import Ingestor
from ocnb.protocol import Event, decode_frame
from ocnb.store import FleetStore

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=12), children, max_size=5)
    ),
    max_leaves=30,
)
EVENT_NAMES = st.sampled_from(
    ["agent", "chat", "sessions.changed", "session.message", "presence", "health", "tick", "x"]
)
# frames shaped like the real ones, with any field replaced by anything
FRAMES = st.fixed_dictionaries(
    {"type": st.sampled_from(["event", "res", "req", "nope"]) | JSON},
    optional={
        "event": EVENT_NAMES | JSON,
        "payload": JSON,
        "seq": st.integers() | JSON,
        "id": st.text(max_size=8) | JSON,
        "ok": st.booleans() | JSON,
        "error": JSON,
        "stateVersion": JSON,
    },
)


@given(st.text(max_size=300) | st.binary(max_size=300))
def test_any_text_or_bytes_is_a_frame_or_a_protocol_error(data: str | bytes) -> None:
    with contextlib.suppress(ProtocolError):
        decode_frame(data)


@given(FRAMES)
def test_any_frame_shape_is_a_frame_or_a_protocol_error(frame: dict[str, Any]) -> None:
    with contextlib.suppress(ProtocolError):
        decode_frame(json.dumps(frame))


PAYLOADS = st.fixed_dictionaries(
    {},
    optional={
        "sessionKey": st.text(max_size=30) | JSON,
        "runId": st.text(max_size=10) | JSON,
        "agentId": st.text(max_size=10) | JSON,
        "stream": st.sampled_from(["lifecycle", "usage", "assistant"]) | JSON,
        "data": st.fixed_dictionaries({}, optional={"phase": JSON, "startedAt": JSON}) | JSON,
        "session": st.fixed_dictionaries(
            {"key": st.text(max_size=30) | JSON},
            optional={"updatedAt": JSON, "status": JSON, "inputTokens": JSON, "model": JSON},
        )
        | JSON,
        "message": JSON,
        "reason": st.sampled_from(["create", "delete", "gone", "new"]) | JSON,
        "state": st.sampled_from(["error", "aborted", "final"]) | JSON,
        "presence": JSON,
        "ts": JSON,
    },
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(EVENT_NAMES | st.just("poll"), PAYLOADS, JSON), max_size=8))
def test_any_event_payload_ingests_into_valid_rows(events: list[tuple[str, Any, Any]]) -> None:
    ingestor = Ingestor("gw")
    store = FleetStore()
    try:
        for name, payload, version in events:
            state = version if isinstance(version, dict) else None
            store.submit(ingestor.event(Event(name, payload, 1, state), 1_795_000_000_000))
        store.flush()
        assert store.stats.errors == 0, store.stats.last_error
        logged = store.arrow("SELECT count(*) AS n FROM events").to_pylist()[0]["n"]
        assert logged == len(events)
    finally:
        store.close()


def test_sql_in_gateway_data_is_stored_as_text() -> None:
    key = "agent:x:x'); DROP TABLE sessions; --"
    store = FleetStore()
    try:
        row = {"key": key, "updatedAt": 1, "status": "done", "label": "'; DELETE FROM runs; --"}
        upsert = Ingestor("gw").session(row, partial=False)
        assert upsert is not None
        store.submit([upsert])
        store.flush()
        rows = store.arrow("SELECT session_key, label FROM sessions").to_pylist()
        assert rows == [{"session_key": key, "label": row["label"]}]
    finally:
        store.close()
