"""Small helpers for tests: waiting on conditions, never sleeping and hoping."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from ocnb import FleetStore, GatewayClient
from ocnb.ops import Op


def wait_for(predicate: Callable[[], object], timeout: float = 10.0, what: str = "") -> None:
    """Poll `predicate` until it is true; fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what or predicate}")
        time.sleep(0.005)


def fetch_all_sessions(client: GatewayClient) -> list[dict[str, Any]]:
    """Every session row: pages via `offset` on v4, one large `limit` on v3."""
    if client.protocol is not None and client.protocol < 4:
        rows: list[dict[str, Any]] = client.call("sessions.list", {"limit": 100_000})["sessions"]
        return rows
    rows, offset = [], 0
    while True:
        page = client.call("sessions.list", {"limit": 100, "offset": offset})
        rows += page["sessions"]
        if page.get("nextOffset") is None:
            return rows
        offset = page["nextOffset"]


class SlowStore(FleetStore):
    """A store whose writer takes 20 ms per batch, as on a slow disk."""

    def _apply(self, ops: list[Op]) -> None:
        time.sleep(0.02)
        super()._apply(ops)
