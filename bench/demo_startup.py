"""Demo gateway start-up: from `DemoGateway(...).start()` to the client's first `hello-ok`.

Baseline, measured in the same run: a bare websockets server started on loopback and one client
handshake against it. Prints a table and writes bench/results/demo_startup.json.

    .venv/bin/python bench/demo_startup.py [--rounds N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import threading
import time
from pathlib import Path

from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection, serve

from ocnb import DeviceIdentity, DeviceTokenStore, GatewayClient
from ocnb.demo_gateway import DemoGateway

RESULTS = Path(__file__).parent / "results"


def bare_websockets_startup() -> float:
    """Seconds to start a plain server on its own thread and complete one client handshake."""
    started = time.perf_counter()
    ready = threading.Event()
    stop: asyncio.Future[None] | None = None
    port = 0

    async def echo(ws: ServerConnection) -> None:
        await ws.send("hello")

    async def run_server() -> None:
        nonlocal stop, port
        async with serve(echo, "127.0.0.1", 0) as server:
            port = server.sockets[0].getsockname()[1]
            stop = asyncio.get_running_loop().create_future()
            ready.set()
            await stop

    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_until_complete, args=(run_server(),), daemon=True)
    thread.start()
    ready.wait()

    async def handshake() -> None:
        async with connect(f"ws://127.0.0.1:{port}/") as ws:
            await ws.recv()

    asyncio.run(handshake())
    elapsed = time.perf_counter() - started
    assert stop is not None
    loop.call_soon_threadsafe(stop.set_result, None)
    thread.join()
    loop.close()
    return elapsed


def demo_startup(home: Path, device: DeviceIdentity, protocol: int) -> float:
    """Seconds from constructing the demo gateway to a client's first hello-ok."""
    started = time.perf_counter()
    with DemoGateway(protocol=protocol) as gateway:
        client = GatewayClient(
            gateway.url,
            gateway.token,
            device=device,
            device_tokens=DeviceTokenStore(home / "tokens.json"),
            subscribe_sessions=False,
        )
        with client:
            client.wait_until_live(30)
            elapsed = time.perf_counter() - started
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=10)
    rounds = parser.parse_args().rounds
    device = DeviceIdentity.generate()
    results: dict[str, list[float]] = {"bare websockets": [], "demo v4": [], "demo v3": []}
    with tempfile.TemporaryDirectory() as home:
        for _ in range(rounds):
            results["bare websockets"].append(bare_websockets_startup())
            results["demo v4"].append(demo_startup(Path(home), device, 4))
            results["demo v3"].append(demo_startup(Path(home), device, 3))
    baseline = statistics.median(results["bare websockets"])
    rows = []
    print(f"{'start-up to first handshake':<30}{'median ms':>12}{'max ms':>10}{'x bare':>9}")
    for name, samples in results.items():
        median = statistics.median(samples)
        rows.append({"name": name, "median_ms": median * 1000, "max_ms": max(samples) * 1000,
                     "ratio_to_bare": median / baseline})  # fmt: skip
        print(
            f"{name:<30}{median * 1000:>12.1f}{max(samples) * 1000:>10.1f}{median / baseline:>9.1f}"
        )
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "demo_startup.json").write_text(
        json.dumps({"rounds": rounds, "results": rows}, indent=2)
    )


if __name__ == "__main__":
    main()
