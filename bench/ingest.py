"""Ingest throughput: a flood of realistic mixed events from a demo gateway in another process.

Measured in the same run, on the same flood:
  baseline  a bare `websockets` client that receives each frame and parses it (orjson, the
            parser ocnb uses)
  client    ocnb's GatewayClient dispatching every event to a handler (no store)
  unwritten ocnb's client, feed and ingestor making every event's store operations, which a
            store that writes nothing drops (what the writer adds is the rest of the gap)
  fleet     full ocnb: every event ingested and queryable in DuckDB (`fleet.sql`)
  ceiling   the bare client writing each event's log row (as ocnb's `events` table holds it)
            to DuckDB from a writer thread, in chunks, and nothing else: no state tables, no
            dispatch, no sync. What a pure-Python design can do at best with the same stream
They run in turn, `--rounds` times: each round's ratios are measured at that moment's
machine speed (which drifts by up to 1.5x within an hour on a shared machine); the table shows
the medians. Prints a table and writes bench/results/ingest.json.

    .venv/bin/python bench/ingest.py [--events 200000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import queue
import secrets
import statistics
import threading
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pyarrow as pa
from _process import GatewayProcess
from websockets.asyncio.client import ClientConnection, connect

import ocnb
from ocnb.ops import Append, Op
from ocnb.protocol import Event, connect_params, decode_frame, encode_request, parse_challenge
from ocnb.schema import LOG_SCHEMA, insert_sql
from ocnb.store import MEMORY_LIMIT, arrow_schema

RESULTS = Path(__file__).parent / "results"


@contextlib.asynccontextmanager
async def bare_client(gateway: GatewayProcess) -> AsyncIterator[ClientConnection]:
    """A bare websockets connection, past the handshake and subscribed to sessions."""
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
        yield ws


def baseline(gateway: GatewayProcess, events: int) -> float:
    """Seconds for a bare client to receive and parse `events` event frames."""

    async def run() -> float:
        async with bare_client(gateway) as ws:
            started, seen = time.perf_counter(), 0
            gateway.flood(events, wait=False)
            while seen < events:
                if orjson.loads(await ws.recv()).get("type") == "event":
                    seen += 1
            return time.perf_counter() - started

    return asyncio.run(run())


CEILING_CHUNK = 2_000  # events per hand-over from the receiving loop to the writer


def ceiling(gateway: GatewayProcess, events: int) -> float:
    """Seconds until the leanest pure-Python pipeline has made `events` events queryable:
    receive, parse, one log row per event (the payload re-serialised, as ocnb stores it),
    handed in chunks to a writer thread that inserts them as Arrow into DuckDB."""
    con = duckdb.connect(config={"memory_limit": MEMORY_LIMIT})
    con.execute(LOG_SCHEMA)
    columns = arrow_schema(con, "events")  # as ocnb's writer types the log's rows
    insert = insert_sql("events", columns.names)
    chunks: queue.Queue[list[tuple[Any, ...]] | None] = queue.Queue()
    written = threading.Condition()
    count = 0

    def write() -> None:
        """Insert all the chunks queued meanwhile as one Arrow table, until the `None`."""
        nonlocal count
        cursor = con.cursor()
        while True:
            queued = [chunks.get()]
            while not chunks.empty():
                queued.append(chunks.get())
            rows = [row for chunk in queued if chunk is not None for row in chunk]
            if rows:
                values = zip(*rows, strict=True)
                batch = pa.Table.from_arrays(  # noqa: F841 - read by the statement
                    [
                        pa.array(column, field.type)
                        for column, field in zip(values, columns, strict=True)
                    ],
                    schema=columns,
                )
                cursor.execute(insert)
                with written:
                    count += len(rows)
                    written.notify_all()
            if None in queued:
                return

    def all_written() -> bool:
        with written:
            return written.wait_for(lambda: count >= events, 600)

    async def run() -> float:
        async with bare_client(gateway) as ws:
            started, ordinal = time.perf_counter(), 0
            gateway.flood(events, wait=False)
            rows: list[tuple[Any, ...]] = []
            while ordinal < events:
                frame = orjson.loads(await ws.recv())
                if frame.get("type") != "event":
                    continue
                ordinal += 1
                payload = frame.get("payload")
                data = payload if isinstance(payload, dict) else {}
                received_at = int(time.time() * 1000)
                rows.append(
                    (
                        "bench",
                        frame.get("seq"),
                        received_at,
                        frame.get("event"),
                        data.get("agentId"),
                        data.get("sessionKey"),
                        data.get("runId"),
                        orjson.dumps(payload).decode(),
                        None,
                        ordinal,
                        min(data.get("ts") or received_at, received_at),
                    )
                )
                if ordinal % CEILING_CHUNK == 0 or ordinal == events:
                    chunks.put(rows)
                    rows = []
            assert await asyncio.to_thread(all_written), f"only {count} of {events} written"
            (queryable,) = con.cursor().execute("SELECT count(*) FROM events").fetchone() or (0,)
            assert queryable == events, f"{queryable} of {events} events queryable"
            return time.perf_counter() - started

    writer = threading.Thread(target=write, name="ceiling-writer")
    writer.start()
    try:
        return asyncio.run(run())
    finally:
        chunks.put(None)
        writer.join()
        con.close()


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
    "ceiling: bare client writing the log": ceiling,
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
