"""Time travel: the fleet as it was at a past moment, rebuilt from the store's own logs.

Every input a gateway's feed ingested is logged with an ordinal: events in `events`, sync
answers and status changes in `sync_log`. Replaying both, in ordinal order and up to a moment,
through fresh ingestors into a fresh store gives the state the live store had then. The log is
streamed, never held whole: it can be larger than memory.
"""

from __future__ import annotations

import json
import math
from collections import deque
from typing import Any

import orjson

from ocnb import checkpoints
from ocnb.errors import InvalidTime
from ocnb.ingest import Ingestor
from ocnb.ops import Op
from ocnb.protocol import Event
from ocnb.schema import STATE_KEYS
from ocnb.store import FleetStore, PastStore
from ocnb.times import as_utc

REPLAY_BATCH = 5_000

# Read through the past store, whose logs are views up to the moment. A gateway's events are
# scanned in the order they were written, which is ordinal order (its feed writes them in
# turn), so this huge stream needs no sort; the sync log is small.
EVENTS = """
SELECT ordinal, epoch_ms(received_at) AS received_at, event AS kind, seq, payload, state_version
FROM events WHERE gateway = $gateway AND ordinal > $after
"""
SYNCS = """
SELECT gateway, ordinal, epoch_ms(received_at) AS received_at, as_of, kind, payload
FROM sync_log ORDER BY gateway, ordinal
"""
GATEWAYS = "SELECT DISTINCT gateway FROM events"
FIRST_INPUT = """
SELECT least((SELECT min(received_at) FROM events), (SELECT min(received_at) FROM sync_log))
    AS first
"""


def past_store(store: FleetStore, when: Any) -> PastStore:
    """A read-only store beside `store` (close it first) holding the state `store` had at
    `when`: agents, sessions, runs, usage, presence and the events up to then. It starts from
    the newest checkpoint before `when` and replays what came after."""
    until = as_utc(when).to_pydatetime()
    store.flush()
    first = store.arrow(FIRST_INPUT)["first"][0].as_py()
    if first is None or until < first:
        held = f"its history starts at {first:%Y-%m-%d %H:%M:%S} UTC" if first else "it is empty"
        raise InvalidTime(f"the store holds nothing at {until:%Y-%m-%d %H:%M:%S} UTC: {held}")
    past = PastStore(store, until)
    try:
        positions = checkpoints.restore(past.cursor(), past.source, STATE_KEYS, until)
        _replay(past, positions)
        past.flush(60)
    except BaseException:
        past.close()
        raise
    return past


def _replay(store: PastStore, positions: dict[str, int]) -> None:
    """Every input after each gateway's position, gateway by gateway (their state is separate)."""
    syncs: dict[str, list[dict[str, Any]]] = {}
    for row in store.arrow(SYNCS).to_pylist():
        syncs.setdefault(row["gateway"], []).append(row)
    gateways = {*positions, *syncs, *store.arrow(GATEWAYS)["gateway"].to_pylist()}
    for gateway in sorted(gateways):
        _replay_gateway(store, gateway, positions.get(gateway, 0), syncs.get(gateway, []))


def _replay_gateway(
    store: PastStore, gateway: str, after: int, syncs: list[dict[str, Any]]
) -> None:
    """The gateway's inputs with an ordinal above `after`, in ordinal order, through a fresh
    ingestor (which first reads the sync inputs up to there, for its own few fields)."""
    ingestor = Ingestor(gateway, logs=False)
    pending: deque[dict[str, Any]] = deque()
    for row in syncs:
        if row["ordinal"] <= after:
            _synced(ingestor, row)  # what it did to the state, the checkpoint holds
        else:
            pending.append(row)

    def syncs_before(ordinal: float) -> list[Op]:
        ops: list[Op] = []
        while pending and pending[0]["ordinal"] < ordinal:
            ops += _synced(ingestor, pending.popleft())
        return ops

    for batch in store.batches(EVENTS, {"gateway": gateway, "after": after}, REPLAY_BATCH):
        ops: list[Op] = []
        for row in batch.to_pylist():
            ops += syncs_before(row["ordinal"])
            event = Event(
                row["kind"], _loads(row["payload"]), row["seq"], _loads(row["state_version"])
            )
            ops += ingestor.event(event, row["received_at"]).ops
        store.submit(ops)
    store.submit(syncs_before(math.inf))


def _synced(ingestor: Ingestor, row: dict[str, Any]) -> list[Op]:
    payload = _loads(row["payload"])
    return ingestor.synced(row["kind"], payload, received_at=row["received_at"], as_of=row["as_of"])


def _loads(text: str | None) -> Any:
    """The logged JSON text back (what orjson refuses, as `to_json` wrote it: the standard
    library)."""
    if text is None:
        return None
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)
