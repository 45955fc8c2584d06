"""Memory and analysis on a large store: RSS after N events (in memory and in a file), the
analysis helpers' time on that store, and RSS over a soak at a steady rate (its slope).
Each part runs in a fresh process of its own, so that no part's memory counts in another's.
Linux only (reads /proc/self/status). Prints tables and writes bench/results/memory.json.

    .venv/bin/python bench/memory.py [--events 1000000] [--soak-seconds 600] [--rate 2000]
"""

from __future__ import annotations

import argparse
import json
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _process import GatewayProcess

import ocnb
from ocnb import analysis

RESULTS = Path(__file__).parent / "results"
NEWEST_CHECKPOINT = "SELECT epoch_ms(max(received_at)) AS ms FROM checkpoints.taken"


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def count(fleet: ocnb.Fleet) -> int:
    return int(fleet.sql("SELECT count(*) AS n FROM events")["n"].iloc[0])


def timed(fn: Any) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def fill(gateway: GatewayProcess, store: str | None, events: int) -> dict[str, Any]:
    """Flood `events` into a fresh fleet; RSS and the analysis helpers' times on it."""
    with gateway.connect(store=store) as fleet:
        target = count(fleet) + events
        gateway.flood(events, wait=False)
        fleet.wait_until(lambda f: count(f) >= target, timeout=3600)
        gateway.wait_sent()
        fleet.store.flush()  # the writer idle, done with its last batch
        row: dict[str, Any] = {"rss_mb": rss_mb(), "events": count(fleet)}
        row["runs_s"] = timed(lambda: analysis.runs(fleet))
        row["token_usage_s"] = timed(lambda: analysis.token_usage(fleet, every="5min"))
        row["fleet_at_s"] = timed(lambda: analysis.fleet_at(fleet, time.time() * 1000).close())
        # the worst moment: just before a checkpoint, so the most is replayed after the last one
        newest = fleet.sql(NEWEST_CHECKPOINT)["ms"].iloc[0]
        row["fleet_at_worst_s"] = timed(lambda: analysis.fleet_at(fleet, newest - 1).close())
        return row


def soak(gateway: GatewayProcess, seconds: float, rate: float) -> dict[str, Any]:
    """RSS every 10 s while `rate` events/s arrive for `seconds`; its slope in MB per minute over
    the whole soak and over its second half (by then DuckDB holds all it may: what still grows
    is not the log's cache)."""
    samples: list[tuple[float, float]] = []
    with gateway.connect() as fleet:
        started = time.monotonic()
        gateway.flood(int(seconds * rate), rate, wait=False)
        while time.monotonic() - started < seconds:
            time.sleep(10)
            samples.append((time.monotonic() - started, rss_mb()))
        gateway.wait_sent()
        events = count(fleet)
    return {"seconds": seconds, "rate": rate, "events": events, "rss_mb": samples,
            "slope_mb_per_min": _slope(samples),
            "second_half_slope_mb_per_min": _slope(samples[len(samples) // 2 :])}  # fmt: skip


def _slope(samples: list[tuple[float, float]]) -> float:
    """MB per minute, by least squares."""
    if len(samples) < 2:
        return 0.0
    xs, ys = [t for t, _ in samples], [mb for _, mb in samples]
    return statistics.linear_regression(xs, ys).slope * 60


def part(name: str, args: argparse.Namespace) -> dict[str, Any]:
    """One part, in this process: "memory" or "file" (fill) or "soak"."""
    with GatewayProcess(secrets.token_urlsafe(16)) as gateway:
        if name == "soak":
            return soak(gateway, args.soak_seconds, args.rate)
        if name == "memory":
            return fill(gateway, None, args.events)
        with tempfile.TemporaryDirectory() as folder:
            return fill(gateway, str(Path(folder) / "fleet.duckdb"), args.events)


def in_own_process(name: str, args: argparse.Namespace) -> dict[str, Any]:
    command = [sys.executable, __file__, "--part", name, "--events", str(args.events)]
    command += ["--soak-seconds", str(args.soak_seconds), "--rate", str(args.rate)]
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    result: dict[str, Any] = json.loads(output.splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--soak-seconds", type=float, default=600)
    parser.add_argument("--rate", type=float, default=2000)
    parser.add_argument("--part", choices=["memory", "file", "soak"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.part:
        print(json.dumps(part(args.part, args)))
        return
    results: dict[str, Any] = {"baseline_rss_mb": rss_mb()}
    for name in ("memory", "file", *(["soak"] if args.soak_seconds > 0 else [])):
        results[name] = in_own_process(name, args)
    print(
        f"{args.events:,} events     RSS MB   runs() s   token_usage() s   fleet_at() s "
        "(now / worst)"
    )
    for name in ("memory", "file"):
        row = results[name]
        print(
            f"{name + ' store':16} {row['rss_mb']:9.0f} {row['runs_s']:10.2f} "
            f"{row['token_usage_s']:17.2f} {row['fleet_at_s']:10.2f} / "
            f"{row['fleet_at_worst_s']:.2f}"
        )
    if "soak" in results:
        soak_row = results["soak"]
        print(f"soak {soak_row['seconds']:.0f} s at {soak_row['rate']:.0f}/s: RSS slope "
              f"{soak_row['slope_mb_per_min']:+.1f} MB/min, second half "
              f"{soak_row['second_half_slope_mb_per_min']:+.1f} MB/min")  # fmt: skip
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "memory.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
