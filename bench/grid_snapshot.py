"""Grid snapshots: build + pack + trait set for 100 and 2,000 agents, against a bare query.

Baseline, in the same run: fetching `agent_cards` as Arrow with no packing. Prints a table and
writes bench/results/grid_snapshot.json.

    .venv/bin/python bench/grid_snapshot.py [--rounds N]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import ocnb
from ocnb.demo import DemoGateway
from ocnb.widgets.snapshot import agents_snapshot

RESULTS = Path(__file__).parent / "results"


def median_ms(action: object, rounds: int) -> float:
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        action()  # type: ignore[operator]
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=20)
    rounds = parser.parse_args().rounds
    rows = []
    print(
        f"{'agents':>7}{'bare query ms':>15}{'snapshot ms':>13}{'grid refresh ms':>17}{'KiB':>8}{'x bare':>8}"
    )
    for agents in (100, 2000):
        gateway = DemoGateway(agents=agents, sessions=agents * 10, run_rate=0, churn=False)
        with tempfile.TemporaryDirectory() as home, gateway:
            fleet = ocnb.connect(gateway.url, gateway.token, timeout=120, device=ocnb.DeviceIdentity.generate(),
                                 device_tokens=ocnb.DeviceTokenStore(Path(home) / "t.json"))  # fmt: skip
            with fleet:
                grid = fleet.grid()
                bare = median_ms(lambda: fleet.arrow("SELECT * FROM agent_cards"), rounds)
                snap = median_ms(lambda: agents_snapshot(fleet.store), rounds)

                def refresh() -> None:
                    grid._agents = b""  # force a send
                    grid.refresh()

                full = median_ms(refresh, rounds)
                size = len(agents_snapshot(fleet.store)) / 1024
        rows.append({"agents": agents, "bare_query_ms": bare, "snapshot_ms": snap,
                     "grid_refresh_ms": full, "snapshot_kib": size, "ratio_to_bare": full / bare})  # fmt: skip
        print(f"{agents:>7}{bare:>15.1f}{snap:>13.1f}{full:>17.1f}{size:>8.0f}{full / bare:>8.1f}")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "grid_snapshot.json").write_text(
        json.dumps({"rounds": rounds, "results": rows}, indent=2)
    )


if __name__ == "__main__":
    main()
