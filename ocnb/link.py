"""One way to a gateway, whichever the transport: the `Link` a feed reads and executes through.

`GatewayClient` (the WebSocket) and `HttpPoller` (`/tools/invoke`) are links; `FallbackLink`
wraps the two, polling over HTTP while the WebSocket path is blocked and giving way when it
clears. The feed only sees a `Link`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any, Protocol
from urllib.parse import urlsplit

from websockets.exceptions import InvalidHandshake

from ocnb.client import GatewayClient
from ocnb.ops import POLLING, GatewayStatus
from ocnb.poll import HttpPoller
from ocnb.protocol import Event

log = logging.getLogger(__name__)

PATH_FAILURES = 2  # failed upgrades in a row before trying the HTTP side
LOOPBACK = ("127.0.0.1", "localhost", "::1")

EventHandler = Callable[[Event], None]
StatusHandler = Callable[[GatewayStatus], None]


class Link(Protocol):
    """What a feed needs of a connection: its events and status, calls to make, and a way to
    ask for the whole sync again."""

    @property
    def status(self) -> GatewayStatus: ...

    @property
    def last_error(self) -> BaseException | None: ...

    def start(self) -> object: ...

    def close(self) -> None: ...

    async def acall(
        self, method: str, params: dict[str, Any] | None = None, timeout: float | None = None
    ) -> Any: ...

    def request_resync(self) -> None: ...

    def on_any(self, handler: EventHandler) -> EventHandler: ...

    def on_status(self, handler: StatusHandler) -> StatusHandler: ...


def allows_fallback(url: str) -> bool:
    """HTTP polling sends the shared secret as a bearer header on every request: by default
    only where that cannot cross a network in clear text (loopback, or TLS)."""
    parts = urlsplit(url)
    return parts.scheme == "wss" or parts.hostname in LOOPBACK


class FallbackLink:
    """The WebSocket, with HTTP polling standing in while its path is blocked: after
    `PATH_FAILURES` upgrades refused or timing out in a row, if `/healthz` answers. The
    WebSocket keeps retrying; once it is live again, polling stops (its sync re-reads all)."""

    def __init__(
        self,
        websocket: GatewayClient,
        http: HttpPoller,
        *,
        agent_hint: Callable[[], str | None] = lambda: None,
    ) -> None:
        """`agent_hint`: the agent HTTP tool calls run as, if the poller was given none (a
        gateway with several agents needs one)."""
        self.websocket = websocket
        self.http = http
        self._agent_hint = agent_hint
        self._handlers: tuple[StatusHandler, ...] = ()
        self._path_failures = 0
        self._falling_back = threading.Lock()
        websocket.on_status(self._websocket_status)
        websocket.on_connect_failed(self._connect_failed)
        http.on_status(lambda _: self._announce())

    def __repr__(self) -> str:
        return f"<FallbackLink {self.websocket.url} {self.status}>"

    @property
    def status(self) -> GatewayStatus:
        """`polling (HTTP)` while the HTTP side stands in, else the WebSocket's."""
        return POLLING if self.http.state == "polling" else self.websocket.status

    @property
    def last_error(self) -> BaseException | None:
        """The poller's while it stands in, else the WebSocket's."""
        return self.http.last_error if self.http.active else self.websocket.last_error

    def start(self) -> FallbackLink:
        self.websocket.start()
        return self

    def close(self) -> None:
        self.websocket.close()
        self.http.close()

    async def acall(
        self, method: str, params: dict[str, Any] | None = None, timeout: float | None = None
    ) -> Any:
        return await self.websocket.acall(method, params, timeout)

    def request_resync(self) -> None:
        self.websocket.request_resync()  # polling re-reads every round

    def on_any(self, handler: EventHandler) -> EventHandler:
        self.websocket.on_any(handler)
        return self.http.on_any(handler)

    def on_status(self, handler: StatusHandler) -> StatusHandler:
        self._handlers = (*self._handlers, handler)
        return handler

    def _announce(self) -> None:
        status = self.status
        for handler in self._handlers:
            handler(status)

    def _websocket_status(self, status: GatewayStatus) -> None:
        if status == "live":
            self._path_failures = 0
            if self.http.active:
                log.warning("%s: WebSocket back; polling stops", self.websocket.url)
                self.http.stop()  # announces the WebSocket's status
        self._announce()

    def _connect_failed(self, error: BaseException) -> None:
        """Upgrades refused or timing out, twice in a row: try the HTTP side (on a thread)."""
        path_like = isinstance(error, InvalidHandshake | TimeoutError)
        self._path_failures = self._path_failures + 1 if path_like else 0
        if self._path_failures >= PATH_FAILURES and not self.http.active:
            threading.Thread(target=self._fall_back, name="ocnb-fallback", daemon=True).start()

    def _fall_back(self) -> None:
        if not self._falling_back.acquire(blocking=False):
            return  # another failure's probe is under way
        try:  # a gateway whose /healthz is silent is away, not just its WebSocket path
            if not self.http.active and self.http.healthz():
                self.http.agent = self.http.agent or self._agent_hint()
                log.warning(
                    "%s: the WebSocket path is blocked (%s) but HTTP answers: polling every %g s",
                    self.websocket.url, self.websocket.last_error, self.http.interval,
                )  # fmt: skip
                self.http.start()
        finally:
            self._falling_back.release()
