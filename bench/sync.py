"""Initial sync: from `ocnb.connect()` to `live` (every agent and session in DuckDB), against a
bare client fetching the same pages (`agents.list`, every `sessions.list` page, the usage
baseline) and parsing them. The demo gateway runs in its own process.
Prints a table and writes bench/results/sync.json.

    .venv/bin/python bench/sync.py [--sessions 10000] [--agents 500] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import statistics
import time
from pathlib import Path
from typing import Any

import orjson
from _process import GatewayProcess
from websockets.asyncio.client import ClientConnection, connect

from ocnb.feed import PAGE_SIZE, all_time_usage_params
from ocnb.protocol import Event, connect_params, decode_frame, encode_request, parse_challenge

RESULTS = Path(__file__).parent / "results"


async def _call(ws: ClientConnection, method: str, params: dict[str, Any]) -> Any:
    await ws.send(encode_request(method, method, params))
    while True:
        frame = orjson.loads(await ws.recv())
        if frame.get("type") == "res" and frame.get("id") == method:
            return frame.get("payload")


def bare(gateway: GatewayProcess) -> float:
    async def run() -> float:
        started = time.perf_counter()
        async with connect(gateway.url, max_size=None, compression=None) as ws:
            challenge = decode_frame(await ws.recv())
            assert isinstance(challenge, Event)
            params = connect_params(
                auth={"token": gateway.token},
                challenge=parse_challenge(challenge),
                client_version="bench",
            )
            await _call(ws, "connect", params)
            await _call(ws, "agents.list", {})
            offset: int | None = 0
            while offset is not None:
                page = await _call(ws, "sessions.list", {"limit": PAGE_SIZE, "offset": offset})
                offset = page.get("nextOffset")
            await _call(ws, "sessions.usage", all_time_usage_params(4))
        return time.perf_counter() - started

    return asyncio.run(run())


def full(gateway: GatewayProcess) -> float:
    started = time.perf_counter()
    with gateway.connect(timeout=600) as fleet:
        seconds = time.perf_counter() - started
        assert len(fleet.sessions()) >= gateway.sessions
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sessions", type=int, default=10_000)
    parser.add_argument("--agents", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with GatewayProcess(secrets.token_urlsafe(16), args.sessions, args.agents) as gateway:
        timings: dict[str, list[float]] = {"bare page fetch": [], "ocnb connect to live": []}
        for _ in range(args.rounds):  # interleaved: the machine's speed drifts (BENCHMARKS.md)
            timings["bare page fetch"].append(bare(gateway))
            timings["ocnb connect to live"].append(full(gateway))
    medians = {name: statistics.median(values) for name, values in timings.items()}
    base = medians["bare page fetch"]
    print(f"{args.sessions:,} sessions, {args.agents} agents   median s   ratio")
    for name, seconds in medians.items():
        print(f"{name:36} {seconds:8.2f} {seconds / base:7.2f}")
    results = {"sessions": args.sessions, "agents": args.agents, "median_s": medians}
    results["ratio"] = medians["ocnb connect to live"] / base
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "sync.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
