"""Grid snapshots: build + pack + trait set for 100 and 2,000 agents, against a bare query.

Baseline, in the same run: fetching `agent_cards` as Arrow with no packing. Prints a table and
writes bench/results/grid_snapshot.json.

    .venv/bin/python bench/grid_snapshot.py [--rounds N]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import ocnb
from ocnb.demo_gateway import DemoGateway
from ocnb.widgets.snapshot import agents_snapshot

RESULTS = Path(__file__).parent / "results"


def median_ms(action: Callable[[], Any], rounds: int) -> float:
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        action()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def measure(agents: int, rounds: int) -> dict[str, float]:
    gateway = DemoGateway(agents=agents, sessions=agents * 10, run_rate=0, churn=False)
    with (
        gateway,
        ocnb.connect(
            gateway.url, gateway.token, timeout=120, device_tokens=ocnb.MemoryDeviceTokens()
        ) as fleet,
    ):
        grid = fleet.grid()

        def refresh() -> None:
            grid._agents = b""  # force a full send
            grid.refresh()

        bare = median_ms(lambda: fleet.arrow("SELECT * FROM agent_cards"), rounds)
        snapshot = median_ms(lambda: agents_snapshot(fleet.store), rounds)
        full = median_ms(refresh, rounds)
        size = len(agents_snapshot(fleet.store)) / 1024
    return {
        "agents": agents,
        "bare_query_ms": bare,
        "snapshot_ms": snapshot,
        "grid_refresh_ms": full,
        "snapshot_kib": size,
        "ratio_to_bare": full / bare,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=20)
    rounds = parser.parse_args().rounds
    print(
        f"{'agents':>7}{'bare ms':>9}{'snapshot ms':>13}{'refresh ms':>12}{'KiB':>7}{'x bare':>8}"
    )
    rows = []
    for agents in (100, 2000):
        row = measure(agents, rounds)
        rows.append(row)
        print(
            f"{agents:>7}{row['bare_query_ms']:>9.1f}{row['snapshot_ms']:>13.1f}"
            f"{row['grid_refresh_ms']:>12.1f}{row['snapshot_kib']:>7.0f}{row['ratio_to_bare']:>8.1f}"
        )
    RESULTS.mkdir(exist_ok=True)
    report = {"rounds": rounds, "results": rows}
    (RESULTS / "grid_snapshot.json").write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
