"""The feed's hand-over to the store: live events batched per loop iteration, in order."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from typing import Any

import pytest

from ocnb.feed import GatewayFeed
from ocnb.ops import Append, Op
from ocnb.protocol import Event
from ocnb.store import FleetStore


class RecordingStore(FleetStore):
    """A store that keeps each submission's logged inputs as (table, ordinal)."""

    def __init__(self) -> None:
        super().__init__()
        self.submissions: list[list[tuple[str, int]]] = []

    def submit(self, ops: Sequence[Op]) -> None:
        if ops:
            logged = [(op.table, op.row["ordinal"]) for op in ops if isinstance(op, Append)]
            self.submissions.append(logged)
        super().submit(ops)


@pytest.fixture
def feed() -> Iterator[GatewayFeed]:
    store = RecordingStore()
    feed = GatewayFeed(store, "g", "ws://127.0.0.1:9", "not-a-real-token")
    yield feed
    store.close()


def _chat(seq: int) -> Event:
    return Event("chat", {"sessionKey": "agent:main:main", "runId": "r1", "state": "delta"}, seq)


def test_live_events_go_to_the_store_together_once_the_loop_turns(feed: GatewayFeed) -> None:
    store = feed.store
    assert isinstance(store, RecordingStore)

    async def read_a_burst() -> None:
        for seq in (1, 2, 3):
            feed._on_event(_chat(seq))
        assert store.submissions == []  # held until the loop runs its callbacks
        await asyncio.sleep(0)

    asyncio.run(read_a_burst())
    assert [[table for table, _ in batch] for batch in store.submissions] == [["events"] * 3]
    store.flush()
    logged = store.df("SELECT list(seq ORDER BY ordinal) AS s FROM events")["s"][0]
    assert logged.tolist() == [1, 2, 3]


def test_other_inputs_submit_the_buffered_events_first(feed: GatewayFeed) -> None:
    store = feed.store
    assert isinstance(store, RecordingStore)

    async def event_then_status() -> None:
        feed._on_event(_chat(1))
        feed._log("status", {"status": "live"})  # before the loop turns
        await asyncio.sleep(0)

    asyncio.run(event_then_status())
    logged = [entry for batch in store.submissions for entry in batch]
    assert [table for table, _ in logged] == ["events", "sync_log"]
    assert logged[0][1] < logged[1][1]  # submitted in ordinal order


def test_events_buffered_when_the_feed_closes_are_kept(feed: GatewayFeed) -> None:
    store = feed.store
    assert isinstance(store, RecordingStore)

    loop = asyncio.new_event_loop()

    def event_then_stop() -> None:
        feed._on_event(_chat(1))
        loop.stop()  # before the callback that would submit it

    loop.call_soon(event_then_stop)
    loop.run_forever()
    loop.close()
    assert store.submissions == []
    feed.close()  # its "closed" status is logged after the buffered event
    store.flush()
    assert store.df("SELECT count(*) AS n FROM events")["n"][0] == 1


def test_the_next_page_is_asked_for_before_this_one_is_ingested(
    feed: GatewayFeed, monkeypatch: pytest.MonkeyPatch
) -> None:
    order: list[str] = []

    async def acall(method: str, params: dict[str, Any], timeout: float | None = None) -> Any:
        offset = params["offset"]
        order.append(f"ask {offset}")
        await asyncio.sleep(0)  # the gateway answers later
        rows = [{"key": f"agent:main:s{offset}", "updatedAt": 1}]
        return {"sessions": rows, "nextOffset": offset + 1 if offset < 2 else None, "ts": 1}

    ingest = feed._log

    def log(kind: str, payload: Any, as_of: Any = None) -> list[Op]:
        if kind == "sessions.list":
            order.append(f"ingest {payload['sessions'][0]['key'][-1]}")
        return ingest(kind, payload, as_of)

    monkeypatch.setattr(feed.link, "acall", acall)
    monkeypatch.setattr(feed, "_log", log)
    asyncio.run(feed._sync_sessions())
    assert order == ["ask 0", "ask 1", "ingest 0", "ask 2", "ingest 1", "ingest 2"]
