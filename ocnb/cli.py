"""The `ocnb` command: `ocnb demo` serves the demo gateway; `ocnb watch` follows a gateway."""

from __future__ import annotations

import argparse
import collections
import os
import secrets
import sys
import threading
import time
from collections.abc import Sequence

from ocnb.auth import TOKEN_VARIABLE, ocnb_home, write_private_file
from ocnb.client import GatewayClient
from ocnb.demo import DemoGateway
from ocnb.errors import OcnbError
from ocnb.protocol import Event


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ocnb", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    demo = commands.add_parser("demo", help="serve the embedded demo gateway until Ctrl-C")
    demo.add_argument("--port", type=int, default=18789, help="0 picks a free port")
    demo.add_argument("--protocol", type=int, choices=(3, 4), default=4)
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--agents", type=int, default=8)
    demo.add_argument("--sessions", type=int, default=60)
    demo.add_argument("--speed", type=float, default=1.0, help="scenario seconds per second")
    demo.add_argument("--watch", action="store_true", help="also follow it, as `ocnb watch`")
    demo.add_argument("--duration", type=float, help="stop after this many seconds")

    watch = commands.add_parser("watch", help="connect to a gateway and print what it does")
    watch.add_argument("url", nargs="?", help="default: $OPENCLAW_GATEWAY_URL or the local one")
    watch.add_argument("--duration", type=float, help="stop after this many seconds")

    args = parser.parse_args(argv)
    try:
        if args.command == "demo":
            return _demo(args)
        return _watch(GatewayClient(args.url), args.duration)
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
        port=args.port,
    )
    with gateway:
        print(
            f"ocnb demo gateway: protocol v{args.protocol}, seed {args.seed}, "
            f"{args.agents} agents, {args.sessions} sessions\n"
            f"  url:   {gateway.url}\n"
            f"  token: in {source}\n"
            "Ctrl-C stops it.",
            flush=True,
        )
        if args.watch:
            return _watch(GatewayClient(gateway.url, token), args.duration)
        _sleep(args.duration)
    return 0


def _watch(client: GatewayClient, duration: float | None) -> int:
    """Print one line every two seconds: connection, roster and what the events were."""
    counts: collections.Counter[str] = collections.Counter()
    lock = threading.Lock()

    def count(event: Event) -> None:
        with lock:
            counts[event.event] += 1

    client.on_any(count)
    deadline = None if duration is None else time.monotonic() + duration
    with client:
        client.wait_until_live(60)
        agents = client.call("agents.list")["agents"]
        sessions = client.call("sessions.list", {"limit": 1})["totalCount"]
        print(
            f"live: {client.url} protocol v{client.protocol}, server {client.server_version}; "
            f"{len(agents)} agents, {sessions} sessions",
            flush=True,
        )
        while deadline is None or time.monotonic() < deadline:
            time.sleep(2)
            with lock:
                summary = ", ".join(f"{n} {name}" for name, n in counts.most_common(5))
                counts.clear()
            print(f"[{client.status}] last 2 s: {summary or 'quiet'}", flush=True)
    return 0


def _sleep(duration: float | None) -> None:
    end = None if duration is None else time.monotonic() + duration
    while end is None or time.monotonic() < end:
        time.sleep(0.2 if end is None else max(0.0, min(0.2, end - time.monotonic())))


if __name__ == "__main__":
    sys.exit(main())
