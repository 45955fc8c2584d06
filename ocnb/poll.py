"""Polling a gateway over plain HTTP (`/tools/invoke`) when the WebSocket path is blocked.

The poller runs on a thread of its own (`ocnb-poll`). Each round lists the sessions with the
`sessions_list` tool (and, less often, the agents with `agents_list`), compares them with the
previous round and reports every difference as a synthetic `poll` event, so the store and the
event log see a (coarser) timeline. The shared secret goes only in the `Authorization` header.
"""

from __future__ import annotations

import functools
import logging
import random
import ssl
import threading
import time
from collections.abc import Callable
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

import httpx

from ocnb.auth import Credentials
from ocnb.client import Backoff
from ocnb.errors import (
    AuthError,
    GatewayUnavailable,
    InvalidRequest,
    OcnbError,
    ProtocolError,
    RateLimited,
    describe,
)
from ocnb.ops import POLLING, GatewayStatus
from ocnb.protocol import Event

log = logging.getLogger(__name__)

PollState = Literal["idle", "connecting", "polling", "failed", "stopped"]
_STATUS: dict[PollState, GatewayStatus] = {
    "idle": "connecting",
    "connecting": "connecting",
    "polling": POLLING,
    "failed": "failed",
    "stopped": "closed",
}
SESSION_LIMIT = 1000
AGENTS_EVERY = 6  # rounds between agent refreshes (one request per known agent)
COMPARED = ("sessionId", "status", "updatedAt", "totalTokens", "model", "abortedLastRun")


def http_base(ws_url: str) -> str:
    """The HTTP origin of a gateway's WebSocket URL (same host and port)."""
    parts = urlsplit(ws_url)
    scheme = {"ws": "http", "wss": "https"}.get(parts.scheme, parts.scheme)
    return urlunsplit((scheme, parts.netloc, "", "", ""))


class HttpPoller:
    """Polls one gateway's HTTP side every `interval` seconds and reports changes as events."""

    def __init__(
        self,
        credentials: Credentials,
        *,
        interval: float = 5.0,
        agent: str | None = None,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
        verify: ssl.SSLContext | bool = True,
    ) -> None:
        """`verify`: the TLS context for https (the WebSocket's); `transport` replaces the
        network (an `httpx.MockTransport` in tests)."""
        self.credentials = credentials
        self.base = http_base(credentials.url)
        self.interval = interval
        self.agent = agent
        self._event_handlers: tuple[Callable[[Event], None], ...] = ()
        self._status_handlers: tuple[Callable[[GatewayStatus], None], ...] = ()
        self.state: PollState = "idle"
        self.last_error: OcnbError | None = None
        self.rounds = 0
        self.backoff = Backoff()
        self._new_http = functools.partial(
            httpx.Client, base_url=self.base, timeout=timeout, transport=transport, verify=verify
        )
        self._sessions: dict[str, dict[str, Any]] = {}
        self._agents: dict[str, dict[str, Any]] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:
        return f"<HttpPoller {self.base} {self.state}, {self.rounds} rounds>"

    # --- the link (see `ocnb.link.Link`) ------------------------------------------------------

    @property
    def status(self) -> GatewayStatus:
        """The poller's state in the gateway's vocabulary: `polling (HTTP)` once a round works."""
        return _STATUS[self.state]

    def on_any(self, handler: Callable[[Event], None]) -> Callable[[Event], None]:
        """Call `handler(event)` on the polling thread for every change a round finds."""
        self._event_handlers = (*self._event_handlers, handler)
        return handler

    def on_status(
        self, handler: Callable[[GatewayStatus], None]
    ) -> Callable[[GatewayStatus], None]:
        """Call `handler(status)` whenever the status changes."""
        self._status_handlers = (*self._status_handlers, handler)
        return handler

    def request_resync(self) -> None:
        """Nothing to do: every round reads the whole session list."""

    async def acall(
        self, method: str, params: dict[str, Any] | None = None, timeout: float | None = None
    ) -> Any:
        """Gateway methods need the WebSocket; over HTTP only the polled tools answer."""
        raise OcnbError(f"{method}: not available while polling over HTTP")

    # --- the HTTP side ---------------------------------------------------------------------------

    @functools.cached_property
    def _http(self) -> httpx.Client:
        """Made on first use (its TLS set-up costs tens of milliseconds; most feeds never poll)."""
        return self._new_http()

    def healthz(self) -> bool:
        """Whether the gateway's HTTP side answers (no credentials needed)."""
        try:
            answer = self._http.get("/healthz", timeout=5)
            return answer.status_code == 200 and bool(answer.json().get("ok"))
        except (httpx.HTTPError, ValueError):
            return False

    def invoke(self, tool: str, args: dict[str, Any], agent: str | None = None) -> Any:
        """Run one tool through `POST /tools/invoke` and return its parsed `details`."""
        body: dict[str, Any] = {"tool": tool, "args": args}
        if agent or self.agent:
            body["agentId"] = agent or self.agent
        method = f"tools/invoke {tool}"
        try:
            answer = self._http.post("/tools/invoke", json=body, headers=self._auth())
        except httpx.HTTPError as exc:
            raise GatewayUnavailable(
                "unreachable", f"{type(exc).__name__}", method=method
            ) from None
        try:
            payload = answer.json()
        except ValueError:
            payload = None
        payload = payload if isinstance(payload, dict) else {}
        error = payload.get("error")
        kind = str(error.get("type", "")) if isinstance(error, dict) else ""
        message = str(error.get("message", "")) if isinstance(error, dict) else ""
        status = answer.status_code
        if status == 401:
            raise AuthError(kind or "unauthorized", message or "check the token", method=method)
        if status == 429:
            retry = _seconds(answer.headers.get("Retry-After"))
            raise RateLimited(kind or "rate_limited", message, method=method, retry_after=retry)
        if status >= 500:
            raise GatewayUnavailable(kind or f"http_{status}", message, method=method)
        if status != 200 or not payload.get("ok"):
            raise InvalidRequest(
                kind or f"http_{status}", message or str(payload)[:200], method=method
            )
        result = payload.get("result")
        return result.get("details") if isinstance(result, dict) else None

    def _auth(self) -> dict[str, str]:
        secret = self.credentials.token or self.credentials.password
        return {"Authorization": f"Bearer {secret.reveal()}"} if secret is not None else {}

    # --- rounds ----------------------------------------------------------------------------------

    def poll_once(self) -> int:
        """One round: report what changed since the last; returns how many events it made."""
        details = self.invoke("sessions_list", {"limit": SESSION_LIMIT})
        rows = details.get("sessions") if isinstance(details, dict) else None
        if not isinstance(rows, list):
            raise ProtocolError(f"sessions_list answered without sessions: {details!r}"[:300])
        now = int(time.time() * 1000)
        events = self._session_changes(rows, complete=not details.get("hasMore"), now=now)
        if self.rounds % AGENTS_EVERY == 0:
            events += self._agent_changes(now)
        self.rounds += 1
        for event in events:
            for handler in self._event_handlers:
                handler(event)
        return len(events)

    def _session_changes(self, rows: list[Any], *, complete: bool, now: int) -> list[Event]:
        events: list[Event] = []
        current = {row["key"]: row for row in rows if isinstance(row, dict) and "key" in row}
        for key, row in current.items():
            before = self._sessions.get(key)
            if before is None or any(before.get(f) != row.get(f) for f in COMPARED):
                reason = "new" if before is None else "changed"
                events.append(_poll_event(reason, now, sessionKey=key, session=row))
        if complete:  # a capped list cannot tell what is gone
            for key in self._sessions.keys() - current.keys():
                gone = self._sessions[key]
                events.append(
                    _poll_event("gone", now, sessionKey=key, sessionId=gone.get("sessionId"))
                )
            self._sessions = current
        else:
            self._sessions.update(current)
        return events

    def _agent_changes(self, now: int) -> list[Event]:
        """Agents, as each known agent sees itself (`agents_list` lists only what the asking
        agent may target)."""
        known = {row.get("agentId") for row in self._sessions.values()} | self._agents.keys()
        events = []
        for agent_id in sorted(a for a in known if isinstance(a, str)):
            details = self.invoke("agents_list", {}, agent=agent_id)
            for agent in details.get("agents", []) if isinstance(details, dict) else []:
                if not isinstance(agent, dict) or agent.get("id") != agent_id:
                    continue
                if self._agents.get(agent_id) != agent:
                    self._agents[agent_id] = agent
                    events.append(_poll_event("agent", now, agentId=agent_id, agent=agent))
        return events

    # --- the thread ------------------------------------------------------------------------------

    @property
    def active(self) -> bool:
        return self.state in ("connecting", "polling")

    def start(self) -> HttpPoller:
        """Poll on a fresh thread (the previous one, if any, was asked to stop)."""
        self._stop = threading.Event()
        self._set_state("connecting")
        self._thread = threading.Thread(
            target=self._run, args=(self._stop,), name="ocnb-poll", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop after the round in flight, without waiting for it."""
        self._stop.set()
        self._set_state("stopped")

    def close(self) -> None:
        self.stop()
        if self._thread is not None:
            self._thread.join(10)
        if "_http" in self.__dict__:
            self._http.close()

    def _set_state(self, state: PollState) -> None:
        if state != self.state:
            self.state = state
            for handler in self._status_handlers:
                handler(self.status)

    def _run(self, stop: threading.Event) -> None:
        rng = random.Random()  # noqa: S311 - jitter, not cryptography
        failures = 0
        while not stop.is_set():
            try:
                self.poll_once()
            except (AuthError, InvalidRequest) as exc:  # the same request cannot succeed later
                self.last_error = exc
                self._set_state("failed")
                log.error("%s: polling stopped: %s", self.base, exc)
                return
            except OcnbError as exc:
                self.last_error = exc
                retry = getattr(exc, "retry_after", None)
                delay = retry if retry is not None else self.backoff.delay(failures, rng)
                failures += 1
                log.warning("%s: poll failed (%s); next in %.1f s", self.base, exc, delay)
                stop.wait(delay)
                continue
            except Exception as exc:  # a bug must show, not kill the thread silently
                self.last_error = ProtocolError(describe(exc))
                log.exception("%s: poll round failed", self.base)
                stop.wait(self.interval)
                continue
            failures, self.last_error = 0, None
            if not stop.is_set():
                self._set_state("polling")
            stop.wait(self.interval)


def _poll_event(reason: str, ts: int, **fields: Any) -> Event:
    return Event("poll", {"reason": reason, "ts": ts, **fields})


def _seconds(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None
