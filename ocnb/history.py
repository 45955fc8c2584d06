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

from ocnb.ingest import Ingestor, Op
from ocnb.protocol import Event
from ocnb.store import FleetStore

if TYPE_CHECKING:
    from ocnb.fleet import Fleet

REPLAY_BATCH = 5_000

# Events are scanned in the order they were written, which per gateway is ordinal order (one
# feed writes them in turn), so this huge stream needs no sort; the sync log is small.
EVENTS = """
SELECT gateway, ordinal, epoch_ms(received_at) AS received_at, event AS kind, seq, payload,
       state_version
FROM events WHERE received_at <= $until
"""
SYNCS = """
SELECT gateway, ordinal, epoch_ms(received_at) AS received_at, as_of, kind, payload
FROM sync_log WHERE received_at <= $until
ORDER BY gateway, ordinal
"""


def as_utc(when: Any) -> pd.Timestamp:
    """A moment given as a `datetime`, a string, epoch ms or a `Timestamp`, as a UTC timestamp
    (naive ones are taken to be UTC)."""
    if isinstance(when, int | float) and not isinstance(when, bool):
        return pd.Timestamp(int(when), unit="ms", tz="UTC")
    stamp = pd.Timestamp(when)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def fleet_at(fleet: Fleet, when: Any) -> Fleet:
    """A read-only `Fleet` (no gateways; close it when done) holding the state `fleet`'s store
    had at `when`: agents, sessions, runs, usage, presence and the events up to then."""
    from ocnb.fleet import Fleet

    until = {"until": as_utc(when).to_pydatetime()}
    fleet.store.flush()
    syncs: dict[str, deque[dict[str, Any]]] = {}
    for row in fleet.store.arrow(SYNCS, until).to_pylist():
        syncs.setdefault(row["gateway"], deque()).append(row)
    ingestors: dict[str, Ingestor] = {}

    def replay_syncs(gateway: str, before: float) -> list[Op]:
        """The gateway's sync inputs with an ordinal below `before`, replayed."""
        ingestor = ingestors.setdefault(gateway, Ingestor(gateway))
        pending, ops = syncs.get(gateway, deque()), []
        while pending and pending[0]["ordinal"] < before:
            row = pending.popleft()
            payload = _loads(row["payload"])
            ops += ingestor.synced(
                row["kind"], payload, received_at=row["received_at"], as_of=row["as_of"]
            )
        return ops

    past = Fleet(FleetStore())
    for batch in fleet.store.batches(EVENTS, until, REPLAY_BATCH):
        ops: list[Op] = []
        for row in batch.to_pylist():
            ops += replay_syncs(row["gateway"], row["ordinal"])
            event = Event(
                row["kind"], _loads(row["payload"]), row["seq"], _loads(row["state_version"])
            )
            ops += ingestors[row["gateway"]].event(event, row["received_at"])
        past.store.submit(ops)
    for gateway in syncs:
        past.store.submit(replay_syncs(gateway, math.inf))
    past.store.flush(60)
    return past


def _loads(text: str | None) -> Any:
    """The logged JSON text back (what orjson refuses, as `to_json` wrote it: the standard
    library)."""
    if text is None:
        return None
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)
