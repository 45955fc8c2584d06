"""Latency at a steady rate: from the gateway sending an event to its row being visible to a
`fleet.sql` query from the user's thread, and to a grid snapshot that includes it being sent.

The demo gateway runs in its own process and sends bursts every 10 ms (2,000 events/s by
default), noting each burst's first seq and wall-clock time. The user's thread polls
`max(seq)` every millisecond; the grid's refreshes are timed with the max seq they include.
Prints p50/p99/max and writes bench/results/latency.json.

    .venv/bin/python bench/latency.py [--rate 2000] [--seconds 20]
"""

from __future__ import annotations

import argparse
import bisect
import json
import secrets
import statistics
import time
from pathlib import Path

from _process import GatewayProcess

from ocnb.widgets import FleetGrid

RESULTS = Path(__file__).parent / "results"
POLL_SECONDS = 0.001  # the user's thread asks a thousand times a second, not flat out
MAX_SEQ = "SELECT coalesce(max(seq), 0) AS s FROM events WHERE gateway = 'bench'"


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    q = statistics.quantiles(ordered, n=100)
    return {"p50_ms": q[49] * 1000, "p99_ms": q[98] * 1000, "max_ms": ordered[-1] * 1000}


def latencies(bursts: list[tuple[int, float]], seen: list[tuple[float, int]]) -> list[float]:
    """For each burst (first seq, send time), the first moment a seq that high was seen."""
    moments = [at for at, _ in seen]
    highest = [seq for _, seq in seen]
    out = []
    for seq, sent in bursts:
        index = bisect.bisect_left(highest, seq)  # `seen` rises in both fields
        if index < len(seen):
            out.append(max(0.0, moments[index] - sent))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rate", type=float, default=2000)
    parser.add_argument("--seconds", type=float, default=20)
    args = parser.parse_args()
    count = int(args.rate * args.seconds)
    with (
        GatewayProcess(secrets.token_urlsafe(16)) as gateway,
        gateway.connect() as fleet,
    ):
        grid_seen: list[tuple[float, int]] = []
        refresh = FleetGrid.refresh

        def timed_refresh(grid: FleetGrid) -> bool:
            highest = int(fleet.sql(MAX_SEQ)["s"].iloc[0])
            sent = refresh(grid)
            if sent:
                grid_seen.append((time.time(), highest))
            return sent

        FleetGrid.refresh = timed_refresh  # type: ignore[method-assign]
        fleet.grid()
        start_seq = int(fleet.sql(MAX_SEQ)["s"].iloc[0])
        gateway.flood(count, args.rate, wait=False)
        sql_seen: list[tuple[float, int]] = []
        last = start_seq
        while last < start_seq + count:
            highest = int(fleet.sql(MAX_SEQ)["s"].iloc[0])
            if highest > last:
                sql_seen.append((time.time(), highest))
                last = highest
            time.sleep(POLL_SECONDS)
        bursts = gateway.wait_sent()
        time.sleep(1)  # let the grid's last refresh happen
    results = {
        "rate": args.rate,
        "events": count,
        "to_sql": percentiles(latencies(bursts, sql_seen)),
        "to_grid": percentiles(latencies(bursts, sorted(grid_seen))),
    }
    print(f"{count:,} events at {args.rate:,.0f}/s   p50 ms   p99 ms   max ms")
    for name in ("to_sql", "to_grid"):
        row = results[name]
        print(f"{name:28} {row['p50_ms']:8.1f} {row['p99_ms']:8.1f} {row['max_ms']:8.1f}")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "latency.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
