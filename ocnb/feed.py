"""`GatewayFeed`: keeps one gateway's part of the store current, through its client.

Its handlers run on the client's loop thread: they turn each event into store operations
(never touching DuckDB) and react to what events imply — a roster change means re-reading
`agents.list`, a stale v3 row means `sessions.describe`. Its `sync` runs on every (re)connect.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Coroutine
from typing import Any

from ocnb.client import GatewayClient, Status
from ocnb.errors import OcnbError
from ocnb.ingest import Ingestor, Op, Sweep
from ocnb.protocol import Event
from ocnb.secret import Secret
from ocnb.store import FleetStore

log = logging.getLogger(__name__)

PAGE_SIZE = 500
NO_LIMIT = 1_000_000  # "everything" where a method has no paging
ROSTER_DEBOUNCE = 0.5
DESCRIBE_DEBOUNCE = 0.25


def _now_ms() -> int:
    return int(time.time() * 1000)


def all_time_usage_params(protocol: int) -> dict[str, Any]:
    """`sessions.usage` for every session and all time: the gateway's defaults are the 50 most
    recent sessions and the last 30 days. v3 has no `range`, so it gets explicit dates."""
    if protocol >= 4:
        return {"agentScope": "all", "range": "all", "limit": NO_LIMIT}
    tomorrow = dt.datetime.now(dt.UTC).date() + dt.timedelta(days=1)
    return {"startDate": "1970-01-01", "endDate": tomorrow.isoformat(), "limit": NO_LIMIT}


class GatewayFeed:
    """Feeds one gateway into a store through a client of its own (started by `start()`)."""

    def __init__(
        self,
        store: FleetStore,
        name: str,
        url: str | None = None,
        token: str | Secret | None = None,
        **client_options: Any,
    ) -> None:
        client = GatewayClient(url, token, on_sync=self.sync, **client_options)
        self.client = client
        self.store = store
        self.name = name
        self.ingestor = Ingestor(name)
        self.synced_sessions = 0
        self.total_sessions: int | None = None
        self.syncs = 0
        self._tasks: set[asyncio.Task[Any]] = set()
        self._roster_pending = False
        self._describe_pending: set[str] = set()
        client.on_any(self._on_event)
        client.on_status(self._on_status)

    # --- the sync ------------------------------------------------------------------------------

    async def sync(self, client: GatewayClient) -> None:
        """Read the whole fleet: roster, every session page, usage; sweep what vanished."""
        hello = client.hello
        assert hello is not None
        self.ingestor.protocol = hello.protocol
        self.store.submit(self.ingestor.hello(hello, client.url, _now_ms()))
        await self._refresh_roster()
        await self._sync_sessions()
        await self._sync_usage()
        self.syncs += 1

    async def _sync_sessions(self) -> None:
        self.synced_sessions, self.total_sessions = 0, None
        keys: set[str] = set()
        offset: int | None = 0
        started: int | None = None
        while offset is not None:
            if self.ingestor.protocol >= 4:
                params: dict[str, Any] = {"limit": PAGE_SIZE, "offset": offset}
            else:  # v3 has no offset: one large page
                params = {"limit": NO_LIMIT}
            page = await self.client.acall("sessions.list", params)
            if started is None:
                started = page.get("ts") if isinstance(page.get("ts"), int) else _now_ms()
            ops = self.ingestor.sessions_page(page)
            keys.update(op.row["session_key"] for op in ops)
            self.store.submit(ops)
            self.synced_sessions = len(keys)
            total = page.get("totalCount")
            self.total_sessions = total if isinstance(total, int) else None
            next_offset = page.get("nextOffset") if self.ingestor.protocol >= 4 else None
            offset = next_offset if isinstance(next_offset, int) and next_offset > offset else None
        assert started is not None
        self.store.submit([Sweep("sessions", self.name, frozenset(keys), started)])

    async def _sync_usage(self) -> None:
        """Lifetime spend per session. The answer is timed by the gateway's `updatedAt` (it may
        come from the gateway's usage cache); live messages after that time add to it."""
        params = all_time_usage_params(self.ingestor.protocol)
        try:
            payload = await self.client.acall("sessions.usage", params, timeout=60)
        except OcnbError as exc:  # optional: totals then start from what is seen live
            log.warning("%s: no sessions.usage (%s); totals count from now on", self.name, exc)
            return
        as_of = payload.get("updatedAt") if isinstance(payload, dict) else None
        as_of = as_of if isinstance(as_of, int) else _now_ms()
        self.store.submit(self.ingestor.usage_baseline(payload, as_of))

    async def _refresh_roster(self) -> None:
        as_of = _now_ms()
        payload = await self.client.acall("agents.list")
        self.store.submit(self.ingestor.agents(payload, as_of))

    # --- live events (on the loop thread) -------------------------------------------------

    def _on_event(self, event: Event) -> None:
        ops: list[Op] = self.ingestor.event(event, _now_ms())
        self.store.submit(ops)
        name, data = event.event, event.payload if isinstance(event.payload, dict) else {}
        if name in ("config.changed", "agent.config"):
            self._schedule_roster()
        elif name == "health":
            ids = self.ingestor.health_agent_ids(data)
            if ids is not None and self.ingestor.agent_ids and ids != self.ingestor.agent_ids:
                self._schedule_roster()
        elif name == "sessions.changed":
            key = data.get("sessionKey")
            if not isinstance(key, str):
                self.client.request_resync()  # a rowless notice: the list as a whole changed
            elif self.ingestor.protocol < 4 and data.get("reason") != "delete":
                self._schedule_describe(key)  # v3 rows are partial and can be stale
        elif name == "agent" and self.ingestor.protocol < 4:
            phase = (
                data.get("data", {}).get("phase") if isinstance(data.get("data"), dict) else None
            )
            key = data.get("sessionKey")
            if phase in ("end", "error") and isinstance(key, str):
                self._schedule_describe(key)  # v3 may send no sessions.changed when a run fails

    def _on_status(self, status: Status) -> None:
        error = self.client.last_error
        self.store.submit(
            [self.ingestor.gateway_row(status=status, last_error=str(error) if error else None)]
        )

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _schedule_roster(self) -> None:
        if not self._roster_pending:
            self._roster_pending = True
            self._spawn(self._roster_later())

    async def _roster_later(self) -> None:
        await asyncio.sleep(ROSTER_DEBOUNCE)
        self._roster_pending = False
        try:
            await self._refresh_roster()
        except OcnbError as exc:
            log.warning("%s: agents.list after a roster change failed: %s", self.name, exc)

    def _schedule_describe(self, key: str) -> None:
        if key not in self._describe_pending:
            self._describe_pending.add(key)
            self._spawn(self._describe_later(key))

    async def _describe_later(self, key: str) -> None:
        await asyncio.sleep(DESCRIBE_DEBOUNCE)
        self._describe_pending.discard(key)
        try:
            answer = await self.client.acall("sessions.describe", {"key": key})
        except OcnbError as exc:
            log.warning("%s: sessions.describe %s failed: %s", self.name, key, exc)
            return
        row = answer.get("session") if isinstance(answer, dict) else None
        upsert = self.ingestor.session(row, partial=False, version=_now_ms())
        if upsert is not None:
            self.store.submit([upsert])
