"""The benchmarks' demo gateway, in a child process (`bench/_gateway.py`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import ocnb
from ocnb.auth import TOKEN_VARIABLE, MemoryDeviceTokens

CHILD = Path(__file__).parent / "_gateway.py"


class GatewayProcess:
    """Starts the child; `flood(n)` asks it for n events and (by default) waits until sent."""

    def __init__(self, token: str, sessions: int = 60, agents: int = 8) -> None:
        self.token, self.sessions, self.agents = token, sessions, agents
        self._child = subprocess.Popen(
            [sys.executable, str(CHILD), str(sessions), str(agents)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, TOKEN_VARIABLE: token},
        )
        assert self._child.stdout is not None
        self.url = self._child.stdout.readline().strip()
        self._pending = 0
        self.bursts: list[tuple[int, float]] = []

    def connect(self, **options: Any) -> ocnb.Fleet:
        """A fleet on this gateway, named `bench` (its device pairing ends with the child)."""
        return ocnb.connect(
            self.url, self.token, name="bench", device_tokens=MemoryDeviceTokens(), **options
        )

    def flood(self, count: int, rate: float | None = None, *, wait: bool = True) -> None:
        """Ask for `count` events (at `rate` events/s); `bursts` holds the send times."""
        assert self._child.stdin is not None
        self.wait_sent()
        self._child.stdin.write(f"flood {count}{'' if rate is None else f' {rate}'}\n")
        self._child.stdin.flush()
        self._pending += 1
        if wait:
            self.wait_sent()

    def wait_sent(self) -> list[tuple[int, float]]:
        """Wait for the child to report every flood asked for as sent; the last one's bursts
        (first seq, wall-clock send time)."""
        assert self._child.stdout is not None
        while self._pending:
            line = self._child.stdout.readline()
            assert line.startswith("sent "), f"gateway process: {line!r}"
            self._pending -= 1
            self.bursts = [(int(seq), float(at)) for seq, at in json.loads(line[5:])]
        return self.bursts

    def __enter__(self) -> GatewayProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._child.stdin is not None
        self.wait_sent()
        self._child.stdin.write("quit\n")
        self._child.stdin.flush()
        self._child.wait(30)
