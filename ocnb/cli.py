"""The `ocnb` command: `ocnb demo` serves the demo gateway; `ocnb watch` follows a gateway."""

from __future__ import annotations

import argparse
import os
import secrets
import sys
import time
from collections.abc import Sequence

from ocnb.auth import TOKEN_VARIABLE, ocnb_home, write_private_file
from ocnb.demo_gateway import DemoGateway
from ocnb.errors import OcnbError
from ocnb.fleet import Fleet, connect


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ocnb", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    demo = commands.add_parser("demo", help="serve the embedded demo gateway until Ctrl-C")
    demo.add_argument("--port", type=int, help="default 18789 (with --report: any free port)")
    demo.add_argument("--protocol", type=int, choices=(3, 4), default=4)
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--agents", type=int, default=8)
    demo.add_argument("--sessions", type=int, default=60)
    demo.add_argument("--speed", type=float, default=1.0, help="scenario seconds per second")
    demo.add_argument("--watch", action="store_true", help="also follow it, as `ocnb watch`")
    demo.add_argument("--duration", type=float, help="stop after this many seconds")
    demo.add_argument(
        "--report",
        type=float,
        nargs="?",
        const=REPORT_SECONDS,
        metavar="SECONDS",
        help=f"show a live fleet table for SECONDS (default {REPORT_SECONDS:g}) and exit: "
        "0 if the fleet was live throughout",
    )

    watch = commands.add_parser("watch", help="mirror a gateway and print a fleet summary")
    watch.add_argument("url", nargs="?", help="default: $OPENCLAW_GATEWAY_URL or the local one")
    watch.add_argument("--duration", type=float, help="stop after this many seconds")
    watch.add_argument("--report", action="store_true", help="a fleet table, not summary lines")

    args = parser.parse_args(argv)
    try:
        if args.command == "demo":
            return _demo(args)
        return _watch(args.url, None, args.duration, report=args.report)
    except KeyboardInterrupt:
        return 0
    except OcnbError as exc:
        print(f"ocnb: {exc}", file=sys.stderr)
        return 1


def _demo(args: argparse.Namespace) -> int:
    token = os.environ.get(TOKEN_VARIABLE)
    source = f"${TOKEN_VARIABLE}"
    if not token:
        token = secrets.token_urlsafe(18)
        token_file = ocnb_home() / "demo-token"
        write_private_file(token_file, token + "\n")
        source = f"the file {token_file} (mode 0600)"
    gateway = DemoGateway(
        args.seed,
        args.agents,
        args.sessions,
        args.protocol,
        token,
        speed=args.speed,
        port=args.port if args.port is not None else 0 if args.report else 18789,
    )
    seconds = args.report if args.report is not None else args.duration
    with gateway:
        print(
            f"ocnb demo gateway: protocol v{args.protocol}, seed {args.seed}, "
            f"{args.agents} agents, {args.sessions} sessions\n"
            f"  url:   {gateway.url}\n"
            f"  token: in {source}\n"
            + ("Ctrl-C stops it." if seconds is None else f"It stops after {seconds:g} s."),
            flush=True,
        )
        if args.report is not None:
            return _watch(gateway.url, token, args.report, report=True)
        if args.watch:
            return _watch(gateway.url, token, args.duration)
        _sleep(args.duration)
    return 0


def _watch(url: str | None, token: str | None, duration: float | None, report: bool = False) -> int:
    """Mirror the gateway into a store and print a summary of it every two seconds (or, as a
    report, redraw a fleet table every second); 1 if the fleet was not live throughout."""
    deadline = None if duration is None else time.monotonic() + duration
    redraw = report and sys.stdout.isatty()
    always_live, seen = True, set[str]()
    with connect(url, token, name="gateway") as fleet:
        client = fleet.clients["gateway"]
        print(
            f"live: {client.url} protocol v{client.protocol}, server {client.server_version}; "
            f"{len(fleet.agents())} agents, {len(fleet.sessions())} sessions",
            flush=True,
        )
        while deadline is None or time.monotonic() < deadline:
            time.sleep(1 if report else 2)
            seen.add(fleet.status)
            always_live = always_live and fleet.status == "live"
            with fleet.snapshot():  # the heading and the table tell of the same moment
                heading = f"[{fleet.status}] {_summary(fleet)}"
                body = f"{heading}\n{_table(fleet)}\n" if report else heading
            print(CLEAR_SCREEN + body if redraw else body, flush=True)
    if always_live:
        print("verdict: the fleet stayed live throughout (exit 0)", flush=True)
        return 0
    print(f"verdict: the fleet was not always live ({', '.join(sorted(seen))}; exit 1)", flush=True)
    return 1


def _table(fleet: Fleet) -> str:
    cards = fleet.agents()[list(REPORT_COLUMNS)].rename(columns=REPORT_COLUMNS)
    return cards.to_string(index=False, na_rep="-", float_format="{:.2f}".format)


def _summary(fleet: Fleet) -> str:
    row = fleet.sql(SUMMARY).to_dict("records")[0]
    statuses = ", ".join(
        f"{row[status]} {status}"
        for status in ("working", "idle", "error", "offline")
        if row[status]
    )
    return (
        f"agents: {statuses or 'none'} | {row['sessions']} sessions | "
        f"runs {row['done']} done, {row['failed']} failed, {row['killed']} killed | "
        f"${row['cost']:.2f} total | {row['events']} events"
    )


REPORT_SECONDS = 10.0
REPORT_COLUMNS = {
    "agent_id": "agent",
    "status": "status",
    "current_session": "working on",
    "sessions": "sessions",
    "tokens_today": "tokens today",
    "cost_today": "$ today",
    "last_run_error": "last error",
}
CLEAR_SCREEN = "\x1b[H\x1b[J"

SUMMARY = """
SELECT
    (SELECT count(*) FILTER (WHERE status = 'working') FROM agent_cards) AS working,
    (SELECT count(*) FILTER (WHERE status = 'idle') FROM agent_cards) AS idle,
    (SELECT count(*) FILTER (WHERE status = 'error') FROM agent_cards) AS error,
    (SELECT count(*) FILTER (WHERE status = 'offline') FROM agent_cards) AS offline,
    (SELECT count(*) FROM sessions WHERE NOT deleted) AS sessions,
    (SELECT count(*) FILTER (WHERE status = 'done') FROM runs) AS done,
    (SELECT count(*) FILTER (WHERE status = 'failed') FROM runs) AS failed,
    (SELECT count(*) FILTER (WHERE status = 'killed') FROM runs) AS killed,
    (SELECT coalesce(sum(cost_total), 0) FROM agent_cards) AS cost,
    (SELECT count(*) FROM events) AS events
"""


def _sleep(duration: float | None) -> None:
    end = None if duration is None else time.monotonic() + duration
    while end is None or time.monotonic() < end:
        time.sleep(0.2 if end is None else max(0.0, min(0.2, end - time.monotonic())))


if __name__ == "__main__":
    sys.exit(main())
