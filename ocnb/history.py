"""Time travel: the fleet as it was at a past moment, rebuilt from the store's own logs.

Every input a gateway's feed ingested is logged with an ordinal: events in `events`, sync
answers and status changes in `sync_log`. Replaying both, in ordinal order and up to a moment,
through fresh ingestors into a fresh store gives the state the live store had then.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pandas as pd

from ocnb.ingest import Ingestor, Op
from ocnb.protocol import Event
from ocnb.store import FleetStore

if TYPE_CHECKING:
    from ocnb.fleet import Fleet

REPLAY_BATCH = 5_000

INPUTS = """
SELECT gateway, ordinal, epoch_ms(received_at) AS received_at, NULL AS as_of, event AS kind,
       seq, payload, state_version, true AS is_event
FROM events WHERE received_at <= $until
UNION ALL
SELECT gateway, ordinal, epoch_ms(received_at), as_of, kind, NULL, payload, NULL, false
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

    until = as_utc(when)
    fleet.store.flush()
    inputs = fleet.store.arrow(INPUTS, {"until": until.to_pydatetime()})
    past = Fleet(FleetStore())
    ingestors: dict[str, Ingestor] = {}
    ops: list[Op] = []
    for row in inputs.to_pylist():
        ingestor = ingestors.setdefault(row["gateway"], Ingestor(row["gateway"]))
        ops += _replay(ingestor, row)
        if len(ops) >= REPLAY_BATCH:
            past.store.submit(ops)
            ops = []
    past.store.submit(ops)
    past.store.flush(60)
    return past


def _replay(ingestor: Ingestor, row: dict[str, Any]) -> list[Op]:
    payload = json.loads(row["payload"]) if row["payload"] is not None else None
    if not row["is_event"]:
        return ingestor.synced(
            row["kind"], payload, received_at=row["received_at"], as_of=row["as_of"]
        )
    versions = json.loads(row["state_version"]) if row["state_version"] is not None else None
    event = Event(row["kind"], payload, row["seq"], versions)
    return ingestor.event(event, row["received_at"])
