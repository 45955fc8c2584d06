"""Ingest throughput: a flood of realistic mixed events from a demo gateway in another process.

Measured in the same run, on the same flood:
  baseline  a bare `websockets` client that receives each frame and parses it (orjson, the
            parser ocnb uses)
  client    ocnb's GatewayClient dispatching every event to a handler (no store)
  fleet     full ocnb: every event ingested and queryable in DuckDB (`fleet.sql`)
Prints a table and writes bench/results/ingest.json.

    .venv/bin/python bench/ingest.py [--events 200000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import threading
import time
from pathlib import Path

import orjson
from _process import GatewayProcess
from websockets.asyncio.client import connect

import ocnb
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

    with ocnb.GatewayClient(gateway.url, gateway.token) as client:
        client.wait_until_live(60)
        client.on_any(count)
        started = time.perf_counter()
        gateway.flood(events, wait=False)
        assert done.wait(600), f"only {seen} of {events} events dispatched"
        return time.perf_counter() - started


def full_fleet(gateway: GatewayProcess, events: int) -> float:
    """Seconds until `events` events are ingested and queryable from the user's thread."""
    with ocnb.connect(gateway.url, gateway.token, name="bench") as fleet:
        fleet.store.flush()
        before = _count(fleet)
        started = time.perf_counter()
        gateway.flood(events, wait=False)
        fleet.wait_until(lambda f: _count(f) >= before + events, timeout=600)
        return time.perf_counter() - started


def _count(fleet: ocnb.Fleet) -> int:
    return int(fleet.sql("SELECT count(*) AS n FROM events")["n"].iloc[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=200_000)
    args = parser.parse_args()
    results = {}
    with GatewayProcess(secrets.token_urlsafe(16)) as gateway:
        for name, measure in (
            ("baseline: websockets + orjson", baseline),
            ("ocnb client dispatch", client_dispatch),
            ("ocnb fleet, queryable in DuckDB", full_fleet),
        ):
            seconds = measure(gateway, args.events)
            results[name] = {"seconds": seconds, "events_per_s": args.events / seconds}
    base = results["baseline: websockets + orjson"]["events_per_s"]
    print(f"{args.events:,} events\n{'':36} {'events/s':>12} {'ratio':>7}")
    for name, row in results.items():
        row["ratio_to_baseline"] = row["events_per_s"] / base
        print(f"{name:36} {row['events_per_s']:12,.0f} {row['ratio_to_baseline']:7.2f}")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "ingest.json").write_text(json.dumps({"events": args.events, **results}, indent=1))


if __name__ == "__main__":
    main()
