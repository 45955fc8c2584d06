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
from typing import TYPE_CHECKING, Any

import orjson
import pandas as pd

from ocnb import checkpoints
from ocnb.ingest import Append, Ingestor, Op
from ocnb.protocol import Event
from ocnb.store import LOGS, STATE_KEYS, PastStore

if TYPE_CHECKING:
    from ocnb.fleet import Fleet

REPLAY_BATCH = 5_000

# Read through the past store, whose logs are views up to the moment. Events are scanned in
# the order they were written, which per gateway is ordinal order (one feed writes them in
# turn), so this huge stream needs no sort; the sync log is small.
EVENTS = """
SELECT gateway, ordinal, epoch_ms(received_at) AS received_at, event AS kind, seq, payload,
       state_version
FROM events WHERE ordinal > coalesce(MAP($gateways::VARCHAR[], $ordinals::BIGINT[])[gateway], 0)
"""
SYNCS = """
SELECT gateway, ordinal, epoch_ms(received_at) AS received_at, as_of, kind, payload
FROM sync_log ORDER BY gateway, ordinal
"""


def as_utc(when: Any) -> pd.Timestamp:
    """A moment given as a `datetime`, a string, epoch ms or a `Timestamp`, as a UTC timestamp
    (naive ones are taken to be UTC)."""
    if isinstance(when, int | float) and not isinstance(when, bool):
        return pd.Timestamp(int(when), unit="ms", tz="UTC")
    stamp = pd.Timestamp(when)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def fleet_at(fleet: Fleet, when: Any) -> Fleet:
    """A read-only `Fleet` (no gateways; close it when done, before `fleet`) holding the state
    `fleet`'s store had at `when`: agents, sessions, runs, usage, presence and the events up to
    then. It starts from the newest checkpoint before `when` and replays what came after."""
    from ocnb.fleet import Fleet

    until = as_utc(when).to_pydatetime()
    fleet.store.flush()
    store = PastStore(fleet.store, until)
    past = Fleet(store)
    try:
        positions = checkpoints.restore(store.cursor(), store.source, STATE_KEYS, until)
        _replay(store, positions)
        store.flush(60)
    except BaseException:
        past.close()
        raise
    return past


def _replay(store: PastStore, positions: dict[str, int]) -> None:
    """Every input after each gateway's position, in ordinal order, through fresh ingestors
    (which first read the sync inputs up to the position, for their own few fields)."""
    ingestors: dict[str, Ingestor] = {}
    syncs: dict[str, deque[dict[str, Any]]] = {}
    for row in store.arrow(SYNCS).to_pylist():
        gateway = row["gateway"]
        ingestor = ingestors.setdefault(gateway, Ingestor(gateway))
        if row["ordinal"] <= positions.get(gateway, 0):
            _synced(ingestor, row)  # the checkpoint holds what it did to the state
        else:
            syncs.setdefault(gateway, deque()).append(row)

    def replay_syncs(gateway: str, before: float) -> list[Op]:
        """The gateway's sync inputs with an ordinal below `before`, replayed."""
        ingestor = ingestors.setdefault(gateway, Ingestor(gateway))
        pending, ops = syncs.get(gateway, deque()), []
        while pending and pending[0]["ordinal"] < before:
            ops += _synced(ingestor, pending.popleft())
        return ops

    params = {"gateways": list(positions), "ordinals": list(positions.values())}
    for batch in store.batches(EVENTS, params, REPLAY_BATCH):
        ops: list[Op] = []
        for row in batch.to_pylist():
            ops += replay_syncs(row["gateway"], row["ordinal"])
            event = Event(
                row["kind"], _loads(row["payload"]), row["seq"], _loads(row["state_version"])
            )
            ops += ingestors[row["gateway"]].event(event, row["received_at"])
        store.submit(_without_logs(ops))
    for gateway in syncs:
        store.submit(_without_logs(replay_syncs(gateway, math.inf)))


def _synced(ingestor: Ingestor, row: dict[str, Any]) -> list[Op]:
    payload = _loads(row["payload"])
    return ingestor.synced(row["kind"], payload, received_at=row["received_at"], as_of=row["as_of"])


def _without_logs(ops: list[Op]) -> list[Op]:
    """The operations minus their log appends (the past store's logs are the live ones)."""
    return [op for op in ops if not (isinstance(op, Append) and op.table in LOGS)]


def _loads(text: str | None) -> Any:
    """The logged JSON text back (what orjson refuses, as `to_json` wrote it: the standard
    library)."""
    if text is None:
        return None
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)
