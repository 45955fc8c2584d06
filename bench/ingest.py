"""Ingest throughput: a flood of realistic mixed events from a demo gateway in another process.

Measured in the same run, on the same flood:
  baseline  a bare `websockets` client that receives each frame and parses it (orjson, the
            parser ocnb uses)
  client    ocnb's GatewayClient dispatching every event to a handler (no store)
  unwritten ocnb's client, feed and ingestor making every event's store operations, which a
            store that writes nothing drops (what the writer adds is the rest of the gap)
  fleet     full ocnb: every event ingested and queryable in DuckDB (`fleet.sql`)
They run in turn, `--rounds` times: each round's ratios are measured at that moment's
machine speed (which drifts by up to 1.5x within an hour on a shared machine); the table shows
the medians. Prints a table and writes bench/results/ingest.json.

    .venv/bin/python bench/ingest.py [--events 200000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import statistics
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import orjson
from _process import GatewayProcess
from websockets.asyncio.client import connect

import ocnb
from ocnb.ingest import Append, Op
from ocnb.protocol import Event, connect_params, decode_frame, encode_request, parse_challenge

RESULTS = Path(__file__).parent / "results"


def baseline(gateway: GatewayProcess, events: int) -> float:
    """Seconds for a bare client to receive and parse `events` event frames."""

    async def run() -> float:
        async with connect(gateway.url, max_size=None, compression=None) as ws:
            challenge = decode_frame(await ws.recv())  # connect.challenge
            assert isinstance(challenge, Event)
            params = connect_params(
                auth={"token": gateway.token},
                challenge=parse_challenge(challenge),
                client_version="bench",
            )
            await ws.send(encode_request("c1", "connect", params))
            orjson.loads(await ws.recv())  # hello-ok
            await ws.send(encode_request("s1", "sessions.subscribe", {}))
            orjson.loads(await ws.recv())
            started, seen = time.perf_counter(), 0
            gateway.flood(events, wait=False)
            while seen < events:
                if orjson.loads(await ws.recv()).get("type") == "event":
                    seen += 1
            return time.perf_counter() - started

    return asyncio.run(run())


def client_dispatch(gateway: GatewayProcess, events: int) -> float:
    """Seconds for ocnb's client to dispatch `events` events to a handler."""
    done, seen = threading.Event(), 0
    started = 0.0

    def count(event: object) -> None:
        nonlocal seen
        seen += 1
        if seen == events:
            done.set()

    with ocnb.GatewayClient(
        gateway.url, gateway.token, device_tokens=ocnb.MemoryDeviceTokens()
    ) as client:
        client.wait_until_live(60)
        client.on_any(count)
        started = time.perf_counter()
        gateway.flood(events, wait=False)
        assert done.wait(600), f"only {seen} of {events} events dispatched"
        return time.perf_counter() - started


def full_fleet(gateway: GatewayProcess, events: int) -> float:
    """Seconds until `events` events are ingested and queryable from the user's thread."""
    with gateway.connect() as fleet:
        fleet.store.flush()
        before = _count(fleet)
        started = time.perf_counter()
        gateway.flood(events, wait=False)
        fleet.wait_until(lambda f: _count(f) >= before + events, timeout=600)
        return time.perf_counter() - started


class UnwrittenStore(ocnb.FleetStore):
    """A store that drops what it is given, counting the events among it."""

    def __init__(self) -> None:
        super().__init__()
        self.events = 0
        self.counted = threading.Condition()

    def submit(self, ops: Sequence[Op]) -> None:
        logged = sum(1 for op in ops if isinstance(op, Append) and op.table == "events")
        with self.counted:
            self.events += logged
            self.counted.notify_all()


def unwritten(gateway: GatewayProcess, events: int) -> float:
    """Seconds until ocnb has made the store operations of `events` events (none written)."""
    store = UnwrittenStore()
    with gateway.connect(store=store):
        before = store.events
        started = time.perf_counter()
        gateway.flood(events, wait=False)
        with store.counted:
            assert store.counted.wait_for(lambda: store.events >= before + events, timeout=600)
        return time.perf_counter() - started


def _count(fleet: ocnb.Fleet) -> int:
    return int(fleet.sql("SELECT count(*) AS n FROM events")["n"].iloc[0])


MEASURES = {
    "baseline: websockets + orjson": baseline,
    "ocnb client dispatch": client_dispatch,
    "ocnb feed, operations not written": unwritten,
    "ocnb fleet, queryable in DuckDB": full_fleet,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    rates: dict[str, list[float]] = {name: [] for name in MEASURES}
    with GatewayProcess(secrets.token_urlsafe(16)) as gateway:
        for _ in range(args.rounds):  # interleaved: each round's ratios share its machine speed
            for name, measure in MEASURES.items():
                rates[name].append(args.events / measure(gateway, args.events))
    base = rates["baseline: websockets + orjson"]
    results = {}
    print(f"{args.events:,} events, {args.rounds} rounds")
    print(f"{'':36} {'events/s':>12} {'ratio':>7}  ratio per round")
    for name, values in rates.items():
        ratios = [rate / base_rate for rate, base_rate in zip(values, base, strict=True)]
        results[name] = {
            "events_per_s": statistics.median(values),
            "ratio_to_baseline": statistics.median(ratios),
            "events_per_s_per_round": values,
            "ratio_per_round": ratios,
        }
        row = results[name]
        per_round = " ".join(f"{ratio:.2f}" for ratio in ratios)
        print(
            f"{name:36} {row['events_per_s']:12,.0f} {row['ratio_to_baseline']:7.2f}  {per_round}"
        )
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "ingest.json").write_text(json.dumps({"events": args.events, **results}, indent=1))


if __name__ == "__main__":
    main()
