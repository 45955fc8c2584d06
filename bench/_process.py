"""The benchmarks' demo gateway, in a child process (`bench/_gateway.py`)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from ocnb.auth import TOKEN_VARIABLE

CHILD = Path(__file__).parent / "_gateway.py"


class GatewayProcess:
    """Starts the child; `flood(n)` asks it for n events and (by default) waits until sent."""

    def __init__(self, token: str, sessions: int = 60, agents: int = 8) -> None:
        self.token = token
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

    def flood(self, count: int, *, wait: bool = True) -> None:
        assert self._child.stdin is not None
        self._drain()
        self._child.stdin.write(f"flood {count}\n")
        self._child.stdin.flush()
        self._pending += 1
        if wait:
            self._drain()

    def _drain(self) -> None:
        """Wait for the child to report every flood asked for as sent."""
        assert self._child.stdout is not None
        while self._pending:
            line = self._child.stdout.readline()
            assert line.startswith("sent"), f"gateway process: {line!r}"
            self._pending -= 1

    def __enter__(self) -> GatewayProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._child.stdin is not None
        self._child.stdin.write("quit\n")
        self._child.stdin.flush()
        self._child.wait(30)
