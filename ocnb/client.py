"""`GatewayClient`: one gateway connection, kept alive on its own thread and asyncio loop.

The kernel never blocks on the network: the client runs on the thread `ocnb-loop`, reconnects
by itself, and hands events to handlers that were registered before the first frame is read.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import errno
import itertools
import logging
import random
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import asdict, dataclass
from ssl import SSLCertVerificationError, SSLContext
from typing import Any, TypeVar

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from ocnb import protocol
from ocnb.auth import URL_VARIABLES, Credentials, DeviceIdentity, DeviceTokenStore
from ocnb.errors import (
    AuthError,
    CertificateError,
    ClientClosed,
    ConnectionLost,
    GatewayUnavailable,
    GatewayUnreachable,
    OcnbError,
    PairingRequired,
    ProtocolError,
    RateLimited,
    RequestTimeout,
    RpcError,
    describe,
)
from ocnb.loop import LoopThread
from ocnb.ops import GatewayStatus
from ocnb.protocol import CloseCode, Event, Hello, Response
from ocnb.secret import Secret
from ocnb.version import __version__

log = logging.getLogger(__name__)

Status = GatewayStatus  # all but `polling (HTTP)`, which only the HTTP side says
EventHandler = Callable[[Event], None]
StatusHandler = Callable[[Status], None]
SyncHook = Callable[["GatewayClient"], Awaitable[None]]
T = TypeVar("T")

# ocnb's own bound on an inbound frame. A gateway's `policy.maxPayload` (25 MB) bounds what it
# accepts, not what it sends: a v3 `sessions.list` of 40,000 sessions is ~36 MB.
MAX_FRAME_BYTES = 256 * 1024 * 1024
_CLOSE_TIMEOUT = 2.0
UNREACHABLE_AFTER = 3  # first attempts refused at once before a waiting caller is told (~3 s)
_NOTHING_THERE = (errno.ECONNREFUSED, errno.EHOSTUNREACH, errno.ENETUNREACH)


@dataclass(frozen=True)
class Backoff:
    """Reconnect delays: `initial` doubling up to `maximum`, each with ± `jitter` spread.

    The attempt count resets once a connection has stayed up for `healthy_after` seconds.
    """

    initial: float = 1.0
    maximum: float = 30.0
    factor: float = 2.0
    jitter: float = 0.2
    healthy_after: float = 10.0
    pairing_retry: float = 10.0

    def delay(self, attempt: int, rng: random.Random) -> float:
        """The delay before attempt number `attempt` (0-based), jittered by `rng`."""
        base = min(self.maximum, self.initial * self.factor ** min(attempt, 32))
        spread = base * self.jitter
        return max(0.0, min(self.maximum, base + rng.uniform(-spread, spread)))


@dataclass
class ClientStats:
    """Counters of one client, over all its connections."""

    frames: int = 0
    events: int = 0
    bad_frames: int = 0
    handler_errors: int = 0
    unknown_responses: int = 0
    attempts: int = 0
    refusals: int = 0  # attempts refused at once, or to a host name that does not resolve
    connects: int = 0
    reconnects: int = 0
    seq_gaps: int = 0
    resyncs: int = 0
    watchdog_closes: int = 0
    rpc_calls: int = 0
    rpc_errors: int = 0
    rpc_latency_ms_total: float = 0.0
    rpc_latency_ms_max: float = 0.0
    last_frame_at: float | None = None
    last_event_at: float | None = None

    @property
    def rpc_latency_ms_mean(self) -> float | None:
        """Mean RPC latency in milliseconds, None before the first call."""
        return self.rpc_latency_ms_total / self.rpc_calls if self.rpc_calls else None

    def as_dict(self) -> dict[str, Any]:
        """Every counter, and the mean RPC latency, as a plain dict."""
        data = asdict(self)
        data["rpc_latency_ms_mean"] = self.rpc_latency_ms_mean
        return data

    def _record_rpc(self, started: float, ok: bool) -> None:
        elapsed_ms = (time.monotonic() - started) * 1000
        self.rpc_calls += 1
        self.rpc_errors += 0 if ok else 1
        self.rpc_latency_ms_total += elapsed_ms
        self.rpc_latency_ms_max = max(self.rpc_latency_ms_max, elapsed_ms)


class _Terminal(Exception):
    """Wraps an error after which reconnecting cannot help."""

    def __init__(self, error: OcnbError) -> None:
        self.error = error


class GatewayClient:
    """A live connection to one OpenClaw gateway, run on its own thread.

    Register handlers with `on()`/`on_any()`, then `start()` (or use `with`). The client
    connects, subscribes to session events, runs `on_sync` and becomes `live`; after a drop it
    does the same again, with exponential backoff. `call()`/`acall()` make RPCs.
    """

    def __init__(
        self,
        url: str | None = None,
        token: str | Secret | None = None,
        *,
        password: str | Secret | None = None,
        scopes: tuple[str, ...] = protocol.DEFAULT_SCOPES,
        caps: tuple[str, ...] = (),
        device: DeviceIdentity | bool = True,
        device_tokens: DeviceTokenStore | None = None,
        subscribe_sessions: bool = True,
        on_sync: SyncHook | None = None,
        backoff: Backoff | None = None,
        connect_timeout: float = 15.0,
        request_timeout: float = 30.0,
        ssl: SSLContext | None = None,
        max_frame_bytes: int = MAX_FRAME_BYTES,
    ) -> None:
        """`ssl`: the TLS context for `wss://` (default: verify against the system's CAs).
        `max_frame_bytes`: the largest frame taken from the gateway; a larger one closes the
        connection (1009) and says so in `last_error`."""
        self.credentials = Credentials.resolve(url, token, password)
        if ssl is not None and not self.credentials.url.startswith("wss:"):
            raise ValueError("ssl= applies to wss:// gateways only")
        self._ssl = ssl
        self.scopes = tuple(scopes)
        self.caps = tuple(caps)
        self._device_option = device
        self._device: DeviceIdentity | None = None
        self._device_tokens = device_tokens
        self.subscribe_sessions = subscribe_sessions
        self._on_sync = on_sync
        self.backoff = backoff or Backoff()
        self.connect_timeout = connect_timeout
        self.request_timeout = request_timeout
        self.max_frame_bytes = max_frame_bytes

        self._handlers: dict[str, tuple[EventHandler, ...]] = {}
        self._any_handlers: tuple[EventHandler, ...] = ()
        self._status_handlers: tuple[StatusHandler, ...] = ()
        self._failure_handlers: tuple[Callable[[BaseException], None], ...] = ()
        self._handlers_lock = threading.Lock()

        self._status: Status = "idle"
        self._status_changed = threading.Condition()
        self.last_error: BaseException | None = None
        self._failure_warned: str | None = None  # the connection failure last warned about
        self._refused_in_a_row = 0
        self.hello: Hello | None = None
        self.stats = ClientStats()
        self._rng = random.Random()  # noqa: S311 - jitter, not cryptography

        self._loop_thread = LoopThread("ocnb-loop")
        self._supervisor: concurrent.futures.Future[None] | None = None
        self._supervisor_task: asyncio.Task[Any] | None = None
        self._ws: ClientConnection | None = None
        self._connected: asyncio.Event | None = None
        self._resync_requested: asyncio.Event | None = None
        self._pending: dict[str, tuple[asyncio.Future[Any], str]] = {}
        self._ids = itertools.count(1)
        self._last_seq: int | None = None
        self._restart_expected: float | None = None

    # --- public surface --------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The gateway's WebSocket URL."""
        return self.credentials.url

    @property
    def status(self) -> Status:
        """The connection's status: connecting, syncing, live, reconnecting, failed, closed."""
        return self._status

    @property
    def protocol(self) -> int | None:
        """The protocol version the gateway speaks (3 or 4), once connected."""
        return self.hello.protocol if self.hello else None

    @property
    def server_version(self) -> str | None:
        """The gateway's version (e.g. `2026.9.6`), once connected."""
        return self.hello.server_version if self.hello else None

    @property
    def granted_scopes(self) -> tuple[str, ...]:
        """The scopes the gateway granted on the current connection."""
        return self.hello.scopes if self.hello else ()

    @property
    def device_id(self) -> str | None:
        """This device's id (what an operator approves when pairing), or None."""
        return self._device.device_id if self._device else None

    def __repr__(self) -> str:
        version = f" v{self.protocol} {self.server_version}" if self.hello else ""
        return f"<GatewayClient {self.url} {self.status}{version}>"

    def on(self, event: str, handler: EventHandler) -> EventHandler:
        """Call `handler(event)` on the loop thread for every `event` frame of that name."""
        with self._handlers_lock:
            self._handlers[event] = (*self._handlers.get(event, ()), handler)
        return handler

    def on_any(self, handler: EventHandler) -> EventHandler:
        """Call `handler(event)` on the loop thread for every event frame."""
        with self._handlers_lock:
            self._any_handlers = (*self._any_handlers, handler)
        return handler

    def on_status(self, handler: StatusHandler) -> StatusHandler:
        """Call `handler(status)` on the loop thread whenever the status changes."""
        with self._handlers_lock:
            self._status_handlers = (*self._status_handlers, handler)
        return handler

    def on_connect_failed(
        self, handler: Callable[[BaseException], None]
    ) -> Callable[[BaseException], None]:
        """Call `handler(error)` on the loop thread after each attempt to connect that failed
        before the gateway answered (refused, timed out, upgrade rejected, dropped)."""
        with self._handlers_lock:
            self._failure_handlers = (*self._failure_handlers, handler)
        return handler

    def start(self) -> GatewayClient:
        """Start the loop thread and connect in the background; returns at once."""
        if self._loop_thread.loop is not None:
            raise RuntimeError("this client was already started")
        if self._device_option is True:
            self._device = DeviceIdentity.load_or_create()
        elif isinstance(self._device_option, DeviceIdentity):
            self._device = self._device_option
        if self._device is not None and self._device_tokens is None:
            self._device_tokens = DeviceTokenStore()
        self._connected = asyncio.Event()
        self._resync_requested = asyncio.Event()
        self._loop_thread.start()
        self._supervisor = self._loop_thread.submit(self._supervise())
        self._supervisor.add_done_callback(self._supervisor_done)
        return self

    def wait_until_live(self, timeout: float = 30.0) -> GatewayClient:
        """Block until the client is live; raise its error if it failed, `GatewayUnreachable`
        once nothing answers at the URL (see `unreachable`), `TimeoutError` else."""
        deadline = time.monotonic() + timeout
        refusals = self.stats.refusals
        with self._status_changed:
            while self._status != "live":
                if self._status == "failed":
                    raise self.last_error or OcnbError("client failed")
                if self._status == "closed":
                    raise ClientClosed("the client is closed")
                if (unreachable := self.unreachable(refusals)) is not None:
                    raise unreachable
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(
                        f"not live after {timeout:g} s (status {self._status}, "
                        f"last error: {self.last_error!r})"
                    )
                self._status_changed.wait(remaining)
        return self

    def unreachable(self, since: int = 0) -> GatewayUnreachable | None:
        """Why nothing can be there: the client never connected, its last `UNREACHABLE_AFTER`
        attempts were refused at once or named no host, and one of them came after `since`
        (a count of `stats.refusals`: a waiter passes the count when it began). Else None.
        The client itself keeps retrying: a gateway that starts later is still found."""
        error = self.last_error
        reason = _nothing_there(error)
        if (
            reason is None
            or self.stats.connects
            or self._refused_in_a_row < UNREACHABLE_AFTER
            or self.stats.refusals <= since
        ):
            return None
        if self.credentials.url_source == "default":
            hint = (
                f"start a gateway there, set {URL_VARIABLES[0]}, or pass the URL: "
                'ocnb.connect("ws://host:18789/", token=...); to try ocnb without one: ocnb.demo()'
            )
        elif isinstance(error, socket.gaierror):
            hint = "check the host name"
        else:
            hint = (
                "is the gateway running and listening there (`openclaw gateway status`)? "
                "One that is starting opens its port within ~20 s: try again then"
            )
        return GatewayUnreachable(
            f"nothing answers at {self.credentials.where()}: {reason} "
            f"({self._refused_in_a_row} attempts); {hint}"
        )

    def wait_for_change(self, seen: Status, timeout: float) -> Status:
        """Block until the status is no longer `seen` or `timeout` passes; the status now."""
        with self._status_changed:
            if self._status == seen:
                self._status_changed.wait(timeout)
            return self._status

    def call(
        self, method: str, params: dict[str, Any] | None = None, timeout: float | None = None
    ) -> Any:
        """Make an RPC and return its payload; waits for a connection within `timeout`.

        Raises the matching `RpcError`, `RequestTimeout` or `ConnectionLost`. Do not call it
        from an event handler (the loop thread): that would deadlock, so it raises instead.
        """
        if self._loop_thread.is_current():
            raise RuntimeError("call() on the client's own loop thread would deadlock; use acall()")
        timeout = self.request_timeout if timeout is None else timeout
        future = self._submit(self._request(method, params, timeout))
        try:
            return future.result(timeout + 5)
        except concurrent.futures.CancelledError:
            raise ClientClosed("the client was closed during the call") from None
        except TimeoutError as exc:
            if isinstance(exc, OcnbError):
                raise
            future.cancel()
            raise RequestTimeout(f"{method}: no answer within {timeout:g} s") from None

    async def acall(
        self, method: str, params: dict[str, Any] | None = None, timeout: float | None = None
    ) -> Any:
        """`call()` for `await`: from a notebook cell, or from `on_sync` on the loop itself."""
        timeout = self.request_timeout if timeout is None else timeout
        coro = self._request(method, params, timeout)
        if self._loop_thread.is_current():
            return await coro
        return await asyncio.wrap_future(self._submit(coro))

    def request_resync(self) -> None:
        """Ask for the `on_sync` hook to run again on the live connection."""
        event = self._resync_requested
        if event is not None:
            self._loop_thread.call_soon(event.set)

    def close(self, timeout: float = 10.0) -> None:
        """Disconnect, fail pending calls with `ClientClosed` and stop the loop thread."""
        if not self._loop_thread.running or self._status == "closed":
            self._set_status("closed")
            return
        with contextlib.suppress(RuntimeError):
            self._loop_thread.run(self._shutdown(), timeout)
        self._loop_thread.stop(timeout)

    def __enter__(self) -> GatewayClient:
        if self._loop_thread.loop is None:
            self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- the loop thread -------------------------------------------------------------------

    def _submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        if self._loop_thread.loop is None:
            coro.close()
            raise ClientClosed("the client was not started: call start() first")
        try:
            return self._loop_thread.submit(coro)
        except RuntimeError:
            raise ClientClosed("the client is closed") from None

    def _set_status(self, status: Status) -> None:
        """Set the status; waiters wake once its handlers have run (a feed logs it first)."""
        with self._status_changed:
            if self._status == status or self._status == "closed":
                return
            self._status = status
        log.info("%s: %s", self.url, status)
        for handler in self._status_handlers:
            self._guarded(handler, status)
        with self._status_changed:
            self._status_changed.notify_all()

    def _guarded(self, handler: Callable[[Any], None], argument: Any) -> None:
        try:
            handler(argument)
        except Exception:
            self.stats.handler_errors += 1
            log.exception("ocnb handler %r failed", handler)

    def _supervisor_done(self, future: concurrent.futures.Future[None]) -> None:
        """The supervisor only ends on close or a terminal error; make anything else visible."""
        if future.cancelled() or self._status in ("failed", "closed"):
            return
        error = future.exception()
        if error is not None:
            self.last_error = error
            log.error("ocnb client for %s stopped: %r", self.url, error)
            self._set_status("failed")

    async def _supervise(self) -> None:
        self._supervisor_task = asyncio.current_task()
        attempt = 0
        while True:
            self._set_status("reconnecting" if self.stats.connects else "connecting")
            started = time.monotonic()
            try:
                await self._connection()
                delay: float | None = None
            except _Terminal as terminal:
                self.last_error = terminal.error
                log.error("%s: giving up: %s", self.url, terminal.error)
                self._fail_pending(terminal.error)
                self._set_status("failed")
                return
            except (GatewayUnavailable, RateLimited) as exc:
                self.last_error = exc
                delay = exc.retry_after
            except PairingRequired as exc:
                self.last_error = exc
                log.warning("%s: %s", self.url, exc)
                delay = self.backoff.pairing_retry
            except (OSError, TimeoutError, InvalidHandshake, ConnectionClosed, OcnbError) as exc:
                self.last_error = exc
                self._log_failure(exc)
                delay = None
                for handler in self._failure_handlers:
                    self._guarded(handler, exc)
            refused = _nothing_there(self.last_error) is not None
            self._refused_in_a_row = self._refused_in_a_row + 1 if refused else 0
            self.stats.refusals += int(refused)
            with self._status_changed:  # a waiter may now see the gateway is unreachable
                self._status_changed.notify_all()
            if time.monotonic() - started >= self.backoff.healthy_after:
                attempt = 0
            if self._restart_expected is not None:
                attempt, delay = 0, min(self._restart_expected, self.backoff.maximum)
                self._restart_expected = None
            if delay is None:
                delay = self.backoff.delay(attempt, self._rng)
                attempt += 1
            self._set_status("reconnecting" if self.stats.connects else "connecting")
            log.info("%s: next attempt in %.1f s", self.url, delay)
            await asyncio.sleep(delay)  # a gateway's retryAfterMs is honoured in full

    async def _connection(self) -> None:
        """One connection, from the socket opening to its close."""
        self.stats.attempts += 1
        # wss: verify against the system's CAs unless given a context
        tls: dict[str, Any] = {"ssl": self._ssl or True} if self.url.startswith("wss:") else {}
        try:
            ws = await connect(
                self.url,
                open_timeout=self.connect_timeout,
                close_timeout=_CLOSE_TIMEOUT,
                max_size=self.max_frame_bytes,
                compression=None,
                # Liveness is the tick watchdog's job: a websockets keepalive ping would time out
                # whenever the store holds the reader back for 20 s (its pong waits behind the
                # frames not read yet) and drop a healthy connection.
                ping_interval=None,
                user_agent_header=f"ocnb/{__version__}",
                **tls,
            )
        except InvalidURI as exc:
            raise _Terminal(ProtocolError(f"invalid gateway URL: {exc}")) from None
        except SSLCertVerificationError as exc:  # retrying cannot make it trusted
            message = f"{self.url}: certificate not trusted ({exc.verify_message})"
            raise _Terminal(CertificateError(message)) from None
        try:
            hello = await self._handshake(ws)
            self._accept(hello, ws)
            await self._serve(ws, hello)
        finally:
            self._ws = None
            assert self._connected is not None
            self._connected.clear()
            await ws.close()
            self._fail_pending(self._lost(ws))
            if ws.close_code == CloseCode.SERVICE_RESTART and self._restart_expected is None:
                self._restart_expected = self.backoff.initial
        if _we_refused_a_frame(ws):
            raise self._lost(ws)  # kept as last_error: the next sync may meet the same frame

    async def _handshake(self, ws: ClientConnection) -> Hello:
        async with asyncio.timeout(self.connect_timeout):
            challenge = protocol.parse_challenge(_as_event(protocol.decode_frame(await ws.recv())))
            device_token = self._stored_device_token()
            auth = self.credentials.connect_auth(device_token)
            params = protocol.connect_params(
                auth=auth,
                challenge=challenge,
                client_version=__version__,
                scopes=self.scopes,
                caps=self.caps,
                device=self._device,
            )
            request_id = f"connect-{next(self._ids)}"
            await ws.send(protocol.encode_request(request_id, "connect", params))
            while True:
                frame = protocol.decode_frame(await ws.recv())
                if isinstance(frame, Response) and frame.id == request_id:
                    break
        if frame.ok:
            return protocol.parse_hello(frame.payload)
        error = self._error(frame.error or {}, "connect", device_token)
        if isinstance(error, AuthError) and "deviceToken" in auth and self._device:
            assert self._device_tokens is not None
            self._device_tokens.forget(self.url, self._device.device_id, protocol.ROLE)
        if isinstance(error, (GatewayUnavailable, RateLimited, PairingRequired)) or error.retryable:
            raise error
        raise _Terminal(error)

    def _accept(self, hello: Hello, ws: ClientConnection) -> None:
        if hello.device_token is not None and self._device and self._device_tokens:
            self._device_tokens.put(
                self.url, self._device.device_id, protocol.ROLE, hello.device_token, hello.scopes
            )
        self.hello = hello
        self.last_error = None
        self._refused_in_a_row = 0
        self._ws = ws
        self._last_seq = None
        self.stats.last_frame_at = time.time()
        self.stats.connects += 1
        self._failure_warned = None
        if self.stats.connects > 1:
            self.stats.reconnects += 1
        log.info(
            "%s: connected, protocol %s, server %s, scopes %s",
            self.url,
            hello.protocol,
            hello.server_version,
            ",".join(hello.scopes) or "none",
        )

    async def _serve(self, ws: ClientConnection, hello: Hello) -> None:
        """Read frames, keep the sync current and watch for silence until the socket closes.

        The reader starts before any request is sent: the sync's answers arrive through it.
        """
        assert self._connected is not None
        reader = asyncio.create_task(self._read_frames(ws), name="ocnb-reader")
        self._connected.set()
        syncer = asyncio.create_task(self._keep_synced(), name="ocnb-sync")
        watchdog = asyncio.create_task(self._watch_ticks(ws, hello.tick_interval_ms / 1000))
        tasks = {reader, syncer, watchdog}
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        for task in done:
            if not task.cancelled() and (error := task.exception()) is not None:
                raise error

    async def _read_frames(self, ws: ClientConnection) -> None:
        """Route every frame (websockets closes the connection on one over `max_frame_bytes`)."""
        stats = self.stats
        with contextlib.suppress(ConnectionClosed):
            async for message in ws:
                stats.frames += 1
                stats.last_frame_at = time.time()
                try:
                    frame = protocol.decode_frame(message)
                except ProtocolError as exc:
                    stats.bad_frames += 1
                    log.warning("%s: ignored a bad frame: %s", self.url, self._describe(exc))
                    continue
                if isinstance(frame, Event):
                    self._dispatch(frame)
                elif isinstance(frame, Response):
                    self._resolve(frame)
                else:
                    stats.bad_frames += 1
                    log.warning("%s: ignored a request frame from the gateway", self.url)

    def _dispatch(self, event: Event) -> None:
        stats = self.stats
        if event.seq is not None:
            last = self._last_seq
            if last is not None and event.seq <= last:
                stats.bad_frames += 1
                log.warning("%s: dropped %s with stale seq %d", self.url, event.event, event.seq)
                return
            if last is not None and event.seq > last + 1:
                stats.seq_gaps += 1
                log.warning("%s: seq gap %d -> %d; re-syncing", self.url, last, event.seq)
                self.request_resync()
            self._last_seq = event.seq
        stats.events += 1
        stats.last_event_at = time.time()
        if event.event == "shutdown":
            self._note_shutdown(event.payload)
        for handler in (*self._handlers.get(event.event, ()), *self._any_handlers):
            self._guarded(handler, event)

    def _note_shutdown(self, payload: Any) -> None:
        expected_ms = protocol.non_negative_number(
            payload.get("restartExpectedMs") if isinstance(payload, dict) else None
        )
        self._restart_expected = self.backoff.initial if expected_ms is None else expected_ms / 1000
        log.info("%s: gateway is shutting down (%s)", self.url, payload)

    def _resolve(self, response: Response) -> None:
        entry = self._pending.pop(response.id, None)
        if entry is None:
            self.stats.unknown_responses += 1
            log.debug("%s: response to unknown request id %r", self.url, response.id[:64])
            return
        future, method = entry
        if future.done():
            return
        if response.ok:
            future.set_result(response.payload)
        else:
            future.set_exception(self._error(response.error or {}, method))

    async def _keep_synced(self) -> None:
        """Subscribe and sync now, and again whenever a re-sync is requested."""
        assert self._resync_requested is not None
        self._resync_requested.clear()
        while True:
            self._set_status("syncing")
            if self.subscribe_sessions:
                await self._request("sessions.subscribe", {}, self.request_timeout)
            if self._on_sync is not None:
                await self._on_sync(self)
            self._set_status("live")
            await self._resync_requested.wait()
            self._resync_requested.clear()
            self.stats.resyncs += 1

    async def _watch_ticks(self, ws: ClientConnection, tick_interval: float) -> None:
        """Close with 4000 after two tick intervals without any frame, so we reconnect."""
        deadline = 2 * tick_interval
        while True:
            await asyncio.sleep(tick_interval / 4)
            silent_for = time.time() - (self.stats.last_frame_at or 0)
            if silent_for > deadline:
                self.stats.watchdog_closes += 1
                log.warning("%s: no frame for %.1f s; reconnecting", self.url, silent_for)
                await ws.close(CloseCode.TICK_TIMEOUT, "tick timeout")
                return

    async def _request(self, method: str, params: dict[str, Any] | None, timeout: float) -> Any:
        assert self._connected is not None
        loop = asyncio.get_running_loop()
        started = time.monotonic()
        try:
            async with asyncio.timeout(timeout):
                await self._wait_connected()
                ws = self._ws
                assert ws is not None
                request_id = str(next(self._ids))
                future: asyncio.Future[Any] = loop.create_future()
                self._pending[request_id] = (future, method)
                try:
                    await ws.send(protocol.encode_request(request_id, method, params))
                    result = await future
                except ConnectionClosed as exc:
                    raise self._lost(ws) from exc
                finally:
                    self._pending.pop(request_id, None)
        except TimeoutError:
            self.stats._record_rpc(started, ok=False)
            raise RequestTimeout(f"{method}: no answer within {timeout:g} s") from None
        except BaseException:
            self.stats._record_rpc(started, ok=False)
            raise
        self.stats._record_rpc(started, ok=True)
        return result

    async def _wait_connected(self) -> None:
        assert self._connected is not None
        while not self._connected.is_set():
            if self._status == "failed":
                raise self.last_error or OcnbError("client failed")
            if self._status == "closed":
                raise ClientClosed("the client is closed")
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(0.25):
                    await self._connected.wait()

    async def _shutdown(self) -> None:
        self._set_status("closed")
        self._fail_pending(ClientClosed("the client was closed"))
        task = self._supervisor_task
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    def _fail_pending(self, error: BaseException) -> None:
        pending, self._pending = self._pending, {}
        for future, _method in pending.values():
            if not future.done():
                future.set_exception(error)

    def _stored_device_token(self) -> Secret | None:
        if self._device is None or self._device_tokens is None or self.credentials.token:
            return None
        return self._device_tokens.get(self.url, self._device.device_id, protocol.ROLE)

    def _error(self, error: dict[str, Any], method: str, *extra: Secret | None) -> RpcError:
        rpc_error = protocol.error_from_response(error, method=method, device_id=self.device_id)
        rpc_error.message = self.credentials.redact(rpc_error.message, *extra)
        rpc_error.args = (self.credentials.redact(str(rpc_error), *extra),)
        return rpc_error

    def _lost(self, ws: ClientConnection) -> ConnectionLost:
        code = ws.close_code
        reason = self.credentials.redact(ws.close_reason or "")
        message = f"connection to {self.url} lost (close {code}{': ' + reason if reason else ''})"
        if _we_refused_a_frame(ws):
            message = (
                f"{self.url} sent a frame over max_frame_bytes={self.max_frame_bytes:,} "
                f"(close {CloseCode.MESSAGE_TOO_BIG}); connect with a larger max_frame_bytes= "
                "to take it"
            )
        return ConnectionLost(message, code=code, reason=reason)

    def _describe(self, exc: BaseException) -> str:
        return self.credentials.redact(describe(exc))

    def _log_failure(self, exc: BaseException) -> None:
        """A warning for each new reason a connection fails; its repeats (a gateway down for an
        hour) only at debug level until a connection succeeds."""
        described = self._describe(exc)
        repeated = described == self._failure_warned
        log.log(
            logging.DEBUG if repeated else logging.WARNING,
            "%s: connection failed: %s%s",
            self.url,
            described,
            "" if repeated else " (repeats are logged at debug level)",
        )
        self._failure_warned = described


def _as_event(frame: protocol.Frame) -> Event:
    if not isinstance(frame, Event):
        raise ProtocolError(f"expected connect.challenge first, got a {type(frame).__name__}")
    return frame


def _nothing_there(error: BaseException | None) -> str | None:
    """What a failed attempt says of the address, if it says nothing listens there."""
    if isinstance(error, socket.gaierror):
        return "its host name does not resolve"
    if isinstance(error, OSError) and error.errno in _NOTHING_THERE:
        return "the connection is refused"
    return None


def _we_refused_a_frame(ws: ClientConnection) -> bool:
    """The connection closed because a frame from the gateway was over `max_size`."""
    sent = ws.protocol.close_sent
    return sent is not None and sent.code == CloseCode.MESSAGE_TOO_BIG
