"""A demo gateway in a process of its own (so sender and receiver do not share a GIL), driven
over stdin by the benchmarks: `flood N [RATE]` sends N events (at RATE events/s) and prints
`sent` and the bursts' first seq and send time as JSON; `quit` stops. The token comes from
$OPENCLAW_GATEWAY_TOKEN; the first line printed is the URL."""

from __future__ import annotations

import json
import os
import sys

from ocnb.auth import TOKEN_VARIABLE
from ocnb.demo_gateway import DemoGateway


def main() -> None:
    sessions = int(sys.argv[1]) if len(sys.argv) > 1 else 60
    agents = int(sys.argv[2]) if len(sys.argv) > 2 else 8
    gateway = DemoGateway(
        agents=agents,
        sessions=sessions,
        token=os.environ[TOKEN_VARIABLE],
        paused=True,
        churn=False,
        tick_interval=3600,
        health_interval=3600,
    ).start()
    print(gateway.url, flush=True)
    for line in sys.stdin:
        command, *args = line.split()
        if command == "flood":  # flood COUNT [RATE]
            rate = float(args[1]) if len(args) > 1 else None
            bursts = gateway.flood(int(args[0]), rate=rate)
            print(f"sent {json.dumps(bursts)}", flush=True)
        elif command == "quit":
            break
    gateway.stop()


if __name__ == "__main__":
    main()
