"""`GatewayFeed`: keeps one gateway's part of the store current, through its link.

A thin executor: each input goes to the `Ingestor`, which says what it means (store operations
and follow-ups); the feed submits the operations to the store's writer and makes the follow-up
reads (a roster re-read, a v3 `sessions.describe`, a re-sync). Its `sync` runs on every
(re)connect. It owns the gateway's status, which it logs to the store.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import threading
import time
from collections.abc import Coroutine
from typing import Any, Literal

from ocnb.client import GatewayClient
from ocnb.errors import OcnbError
from ocnb.ingest import Ingestor, usage_cache_status
from ocnb.link import FallbackLink, Link, allows_fallback
from ocnb.ops import Describe, FollowUp, GatewayStatus, Op, RefetchRoster, Resync, Upsert
from ocnb.poll import HttpPoller
from ocnb.protocol import Event
from ocnb.secret import Secret
from ocnb.store import FleetStore
from ocnb.times import now_ms

log = logging.getLogger(__name__)

PAGE_SIZE = 500
NO_LIMIT = 1_000_000  # "everything" where a method has no paging
ROSTER_DEBOUNCE = 0.5
DESCRIBE_DELAYS = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0)  # v3 re-reads after a run's end
USAGE_RETRY_DELAYS = (0.5, 1.0, 2.0, 4.0, 8.0, 15.0)  # a usage cache refreshing (~30 s)


def all_time_usage_params(protocol: int) -> dict[str, Any]:
    """`sessions.usage` for every session and all time: the gateway's defaults are the 50 most
    recent sessions and the last 30 days. v3 has no `range`, so it gets explicit dates."""
    if protocol >= 4:
        return {"agentScope": "all", "range": "all", "limit": NO_LIMIT}
    tomorrow = dt.datetime.now(dt.UTC).date() + dt.timedelta(days=1)
    return {"startDate": "1970-01-01", "endDate": tomorrow.isoformat(), "limit": NO_LIMIT}


class GatewayFeed:
    """Feeds one gateway into a store through a link of its own (started by `start()`), and
    owns the status the fleet, the store's `gateways` table and the grid show."""

    def __init__(
        self,
        store: FleetStore,
        name: str,
        url: str | None = None,
        token: str | Secret | None = None,
        *,
        transport: Literal["ws", "http"] = "ws",
        fallback: bool | None = None,
        poll_interval: float = 5.0,
        agent: str | None = None,
        **client_options: Any,
    ) -> None:
        """`transport="http"` only polls; with the WebSocket, `fallback` allows polling while
        its path is blocked (default: for loopback and TLS URLs, see `allows_fallback`).
        `agent` is the agent HTTP tool calls run as (needed where several are configured)."""
        if transport not in ("ws", "http"):
            raise ValueError(f"transport must be 'ws' or 'http', not {transport!r}")
        client = GatewayClient(url, token, on_sync=self.sync, **client_options)
        poller = HttpPoller(
            client.credentials,
            interval=poll_interval,
            agent=agent,
            verify=client_options.get("ssl") or True,
        )
        fallback = allows_fallback(client.url) if fallback is None else fallback
        self.client = client  # the WebSocket: also for the calls a user makes (`Fleet.call`)
        self.link: Link = (
            poller
            if transport == "http"
            else FallbackLink(client, poller, agent_hint=self._agent_for_http)
            if fallback
            else client
        )
        self._ingesting = threading.Lock()  # ordinals are given in the order ops are submitted
        self._buffered: list[Op] = []  # live events' ops, submitted once per loop iteration
        self._status_changed = threading.Condition()
        self._closed = False
        self._said: dict[str, Any] = {}  # the status last logged
        self.store = store
        self.name = name
        self.ingestor = Ingestor(name, ordinal=time.time_ns() // 1000)  # rises across restarts
        self.synced_sessions = 0
        self.total_sessions: int | None = None
        self.syncs = 0
        self._tasks: set[asyncio.Task[Any]] = set()
        self._roster_pending = False
        self._describe_pending: dict[str, bool] = {}  # session key -> after a run's end
        self.link.on_any(self._on_event)
        self.link.on_status(self._on_status)

    # --- the sync ------------------------------------------------------------------------------

    async def sync(self, client: GatewayClient) -> None:
        """Read the whole fleet: roster, every session page, usage; sweep what vanished.
        The usage is asked for first and ingested when it comes (between two pages)."""
        hello = client.hello
        assert hello is not None
        with self._ingesting:
            self._submit(self.ingestor.hello(hello, client.url, now_ms()))
        usage = asyncio.ensure_future(self._sync_usage())
        try:
            await self._refresh_roster()
            await self._sync_sessions()
            await usage
        finally:
            usage.cancel()
            await asyncio.gather(usage, return_exceptions=True)
        self.syncs += 1

    async def _sync_sessions(self) -> None:
        """Every page of `sessions.list`; the next page is asked for while this one is ingested."""
        self.synced_sessions, self.total_sessions = 0, None
        keys: set[str] = set()
        started: int | None = None
        request: asyncio.Future[tuple[int, Any]] | None = await self._page_request(0)
        try:
            while request is not None:
                offset, page = await request
                next_offset = page.get("nextOffset") if self.ingestor.protocol >= 4 else None
                request = None
                if isinstance(next_offset, int) and next_offset > offset:
                    request = await self._page_request(next_offset)
                if started is None:  # the first page: what it shows supersedes all held before
                    started = page.get("ts") if isinstance(page.get("ts"), int) else now_ms()
                    self._log("sessions.resync", {}, as_of=started)
                ops = self._log("sessions.list", page)
                keys.update(op.row["session_key"] for op in ops if isinstance(op, Upsert))
                self.synced_sessions = len(keys)
                total = page.get("totalCount")
                self.total_sessions = total if isinstance(total, int) else None
        finally:
            if request is not None:
                request.cancel()
                await asyncio.gather(request, return_exceptions=True)
        assert started is not None
        self._log("sessions.swept", {"keep": sorted(keys)}, as_of=started)

    async def _page_request(self, offset: int) -> asyncio.Future[tuple[int, Any]]:
        """The page at `offset`, asked for now (sent before this returns): (offset, page)."""
        if self.ingestor.protocol >= 4:
            params: dict[str, Any] = {"limit": PAGE_SIZE, "offset": offset}
        else:  # v3 has no offset: one large page
            params = {"limit": NO_LIMIT}

        async def fetch() -> tuple[int, Any]:
            return offset, await self.link.acall("sessions.list", params)

        request = asyncio.ensure_future(fetch())
        await asyncio.sleep(0)  # its first step sends it: the gateway works while we ingest
        return request

    async def _sync_usage(self) -> None:
        """Lifetime spend per session, if the gateway has it. The answer is timed by the
        gateway's `updatedAt`; live messages after that time add to it. An answer from a usage
        cache still being refreshed (right after a restart) lacks what happened meanwhile: it
        is asked for again, as a follow-up that does not hold the sync back."""
        payload = await self._ask_usage()
        if payload is None:
            return
        if usage_cache_status(payload) == "fresh":
            self._log_usage(payload)
        else:
            self._spawn(self._usage_when_fresh())

    async def _ask_usage(self) -> Any:
        """One `sessions.usage` answer for every session and all time, or None."""
        params = all_time_usage_params(self.ingestor.protocol)
        try:
            return await self.link.acall("sessions.usage", params, timeout=60)
        except OcnbError as exc:  # optional: totals then start from what is seen live
            log.warning("%s: no sessions.usage (%s); totals count from now on", self.name, exc)
            return None

    async def _usage_when_fresh(self) -> None:
        """Ask again until the gateway's usage cache is fresh; after `USAGE_RETRY_DELAYS`, take
        the last answer and say that its totals may be short."""
        payload = None
        for delay in USAGE_RETRY_DELAYS:
            await asyncio.sleep(delay)
            payload = await self._ask_usage()
            if payload is None or usage_cache_status(payload) == "fresh":
                break
        if payload is None:
            return
        if (status := usage_cache_status(payload)) != "fresh":
            log.warning(
                "%s: sessions.usage still %s after %.0f s: lifetime totals may be short by "
                "what the gateway has not re-read yet, until the next sync",
                self.name, status, sum(USAGE_RETRY_DELAYS),
            )  # fmt: skip
        self._log_usage(payload)

    def _log_usage(self, payload: Any) -> None:
        as_of = payload.get("updatedAt") if isinstance(payload, dict) else None
        self._log("sessions.usage", payload, as_of=as_of)  # checked by the ingestor

    async def _refresh_roster(self) -> None:
        as_of = now_ms()
        payload = await self.link.acall("agents.list")
        self._log("agents.list", payload, as_of=as_of)

    @property
    def follow_ups(self) -> int:
        """Reads in flight or waiting that events asked for (roster refetch, v3 describes)."""
        return len(self._tasks)

    # --- inputs: ingested, submitted, followed up ---------------------------------------------

    def _log(self, kind: str, payload: Any, as_of: Any = None) -> list[Op]:
        """Ingest a non-event input now (from any of the feed's threads); returns its ops."""
        with self._ingesting:
            ops = self.ingestor.synced(kind, payload, received_at=now_ms(), as_of=as_of)
            self._submit(ops)
        return ops

    def _submit(self, ops: list[Op]) -> None:
        """Submit the buffered ops, then `ops` (the caller holds `_ingesting`)."""
        if self._buffered:
            ops, self._buffered = self._buffered + ops, []
        self.store.submit(ops)

    def _submit_buffered(self) -> None:
        with self._ingesting:
            self._submit([])

    def _on_event(self, event: Event) -> None:
        """An event: the ingestor says what it means, the feed submits and follows up.

        On the loop thread, its ops wait for the others read in this loop iteration and go to
        the store together (a loop callback: before any call's answer that came after them is
        seen, so `Fleet.catch_up` still covers them); from the HTTP poller's thread, at once."""
        with self._ingesting:
            ops, follow_ups = self.ingestor.event(event, now_ms())
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                self._submit(ops)
            else:
                if ops and not self._buffered:
                    loop.call_soon(self._submit_buffered)
                self._buffered += ops
        for follow_up in follow_ups:
            self._follow(follow_up)

    def _follow(self, follow_up: FollowUp) -> None:
        """Do what an input asked for (on the loop thread)."""
        match follow_up:
            case RefetchRoster():
                if not self._roster_pending:
                    self._roster_pending = True
                    self._spawn(self._roster_later())
            case Describe(key, run_ended):
                pending = self._describe_pending.get(key)
                self._describe_pending[key] = run_ended or bool(pending)
                if pending is None:
                    self._spawn(self._describe_later(key))
            case Resync(reason):
                log.info("%s: re-syncing: %s", self.name, reason)
                self.link.request_resync()

    def _on_status(self, status: GatewayStatus) -> None:
        self._log_status()
        with self._status_changed:
            self._status_changed.notify_all()

    def _log_status(self) -> None:
        """Tell the store the status (once per change: its `gateways` row shows it)."""
        error = self.last_error
        said = {"status": self.status, "lastError": str(error) if error else None}
        if said != self._said:
            self._said = said
            self._log("status", said)

    # --- the status ------------------------------------------------------------------------

    @property
    def status(self) -> GatewayStatus:
        """The link's status (`polling (HTTP)` while HTTP stands in), `closed` once closed."""
        return "closed" if self._closed else self.link.status

    @property
    def last_error(self) -> BaseException | None:
        return self.link.last_error

    def wait_for_change(self, seen: str, timeout: float) -> str:
        """Block until the status is no longer `seen` or `timeout` passes; the status now."""
        with self._status_changed:
            if self.status == seen:
                self._status_changed.wait(timeout)
        return self.status

    def start(self) -> None:
        """Connect, in the background."""
        self.link.start()

    def close(self) -> None:
        """Disconnect; the store's last word on this gateway is `closed`."""
        self._closed = True
        self.link.close()
        self._on_status("closed")

    def _agent_for_http(self) -> str | None:
        """The agent HTTP tool calls run as: the default one where several are configured."""
        ids = self.ingestor.agent_ids
        return (self.ingestor.default_agent_id or min(ids)) if len(ids) > 1 else None

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _roster_later(self) -> None:
        await asyncio.sleep(ROSTER_DEBOUNCE)
        self._roster_pending = False
        try:
            await self._refresh_roster()
        except OcnbError as exc:
            log.warning("%s: agents.list after a roster change failed: %s", self.name, exc)

    async def _describe_later(self, key: str) -> None:
        for delay in DESCRIBE_DELAYS:
            await asyncio.sleep(delay)
            try:
                answer = await self.link.acall("sessions.describe", {"key": key})
            except OcnbError as exc:
                log.warning("%s: sessions.describe %s failed: %s", self.name, key, exc)
                break
            row = answer.get("session") if isinstance(answer, dict) else None
            if not isinstance(row, dict):
                break
            self._log("sessions.describe", row)
            if not self._describe_pending[key]:
                break  # no run ended: one read is enough
        self._describe_pending.pop(key, None)
