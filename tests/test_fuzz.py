"""Hostile input, generated: whatever a gateway sends, parsing and ingesting never break."""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from support.fakegateway import FakeGateway
from support.helpers import wait_for

from ocnb import Backoff, GatewayClient
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


class LiveClient:
    """One client on a scripted gateway, kept across examples, with every log line it wrote."""

    def __init__(self, gateway: FakeGateway, client: GatewayClient) -> None:
        self.gateway, self.client = gateway, client
        self.markers: list[int] = []
        self.log_lines: list[str] = []
        self.sent = itertools.count()
        client.on("fuzz.marker", lambda event: self.markers.append(event.payload))

    def emit(self, record: logging.LogRecord) -> None:
        self.log_lines.append(record.getMessage())


# The `live` client's connection outlasts single tests; websockets draws its keepalive pings'
# payloads from the `random` module, which Hypothesis takes for a strategy using it.
pytestmark = pytest.mark.filterwarnings(
    "ignore:Do not use the `random` module inside strategies:"
    "hypothesis.errors.HypothesisDeprecationWarning"
)


@pytest.fixture(scope="module")
def live() -> Iterator[LiveClient]:
    backoff = Backoff(initial=0.05, maximum=0.2)
    with FakeGateway(max_payload=64_000) as gateway:
        # no subscribe and no sync: every answer the gateway sends is one nobody asked for
        client = GatewayClient(
            gateway.url, gateway.token, backoff=backoff, subscribe_sessions=False
        )
        with client:
            client.wait_until_live(10)
            live = LiveClient(gateway, client)
            handler = logging.Handler(logging.DEBUG)
            handler.emit = live.emit  # type: ignore[method-assign]
            logger = logging.getLogger("ocnb")
            logger.addHandler(handler)
            try:
                yield live
            finally:
                logger.removeHandler(handler)


WIRE = (
    FRAMES.map(json.dumps)
    | st.text(max_size=200)
    | st.binary(max_size=200)
    | st.builds(
        lambda n: f'{{"type": "event", "event": "x", "payload": "{"y" * n}"}}',
        st.integers(60_000, 70_000),
    )
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frames=st.lists(WIRE, min_size=1, max_size=12))
def test_a_live_client_survives_any_frames_and_counts_each_one(
    live: LiveClient, frames: list[str | bytes]
) -> None:
    """Each frame is dispatched, or counted as bad or as an answer nobody asked for."""
    client, stats = live.client, live.client.stats
    before = stats.frames, stats.events, stats.bad_frames, stats.unknown_responses
    for frame in frames:
        live.gateway.send_raw(frame)
    marker = next(live.sent)
    live.gateway.send_raw(json.dumps({"type": "event", "event": "fuzz.marker", "payload": marker}))
    wait_for(lambda: marker in live.markers, 10, "the marker after the fuzzed frames")
    frames_seen = stats.frames - before[0]
    assert frames_seen == len(frames) + 1
    sorted_out = stats.events - before[1] + stats.bad_frames - before[2]
    assert sorted_out + stats.unknown_responses - before[3] == frames_seen
    assert client.status in ("live", "syncing") and stats.connects == 1
    assert max(map(len, live.log_lines), default=0) < 1_000


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
@example([("poll", {"session": {"key": "0", "updatedAt": 9223372036854776.0}}, None)])  # ms > 9999
@example([("poll", {"session": {"key": "0", "inputTokens": 1e300, "updatedAt": -1e19}}, None)])
def test_any_event_payload_ingests_into_valid_rows(events: list[tuple[str, Any, Any]]) -> None:
    ingestor = Ingestor("gw")
    store = FleetStore()
    try:
        for name, payload, version in events:
            state = version if isinstance(version, dict) else None
            store.submit(ingestor.event(Event(name, payload, 1, state), 1_795_000_000_000).ops)
        store.flush()
        assert store.stats.errors == 0, store.stats.last_error
        logged = store.arrow("SELECT count(*) AS n FROM events").to_pylist()[0]["n"]
        assert logged == len(events)
    finally:
        store.close()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(FRAMES.map(json.dumps), max_size=8))
@example(['{"type":"event","event":"x","seq":18446744073709551615}'])  # beyond BIGINT
def test_any_frame_the_client_accepts_ingests_into_valid_rows(frames: list[str]) -> None:
    """What `decode_frame` lets through must never fail a store batch (a batch that fails is
    retried for ever, holding up every later one)."""
    ingestor, store, accepted = Ingestor("gw"), FleetStore(), 0
    try:
        for text in frames:
            with contextlib.suppress(ProtocolError):
                event = decode_frame(text)
                if isinstance(event, Event):
                    store.submit(ingestor.event(event, 1_795_000_000_000).ops)
                    accepted += 1
        store.flush()
        assert store.stats.errors == 0, store.stats.last_error
        logged = store.arrow("SELECT count(*) AS n FROM events").to_pylist()[0]["n"]
        assert logged == accepted
    finally:
        store.close()


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(["sessions.usage", "agents.list", "sessions.list"]), JSON, JSON)
@example("sessions.usage", {"sessions": [{"key": "k", "usage": {"input": 1}}]}, 2**64 - 1)
@example("sessions.usage", {"sessions": [{"key": "k", "usage": {"input": 1}}]}, 10**17)
def test_any_sync_answer_and_time_ingest_into_valid_rows(
    kind: str, payload: Any, as_of: Any
) -> None:
    """A sync answer's own time (`sessions.usage`'s `updatedAt`) comes from the gateway too."""
    store = FleetStore()
    try:
        store.submit(Ingestor("gw").synced(kind, payload, received_at=5, as_of=as_of))
        store.flush()
        assert store.stats.errors == 0, store.stats.last_error
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
