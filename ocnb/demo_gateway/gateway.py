"""`DemoGateway`: a WebSocket server on loopback that speaks the OpenClaw gateway protocol.

It enforces the handshake the way real gateways do, answers the fleet RPCs from a seeded
`World`, streams that world's activity as events, and can misbehave on request (fault injection)
so clients can be tested against drops, silence, seq gaps, garbage and restarts.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import secrets
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from ocnb.demo_gateway import flood, payloads
from ocnb.demo_gateway.admission import Admission
from ocnb.demo_gateway.events import frames_for
from ocnb.demo_gateway.http import HttpFront
from ocnb.demo_gateway.methods import Methods
from ocnb.demo_gateway.refusals import Refusal
from ocnb.demo_gateway.world import Happening, Run, World
from ocnb.loop import LoopThread
from ocnb.protocol import CloseCode
from ocnb.secret import Secret

log = logging.getLogger(__name__)

MAX_PREAUTH_BYTES = 64 * 1024
MAX_FRAME_BYTES = 26_214_400
SUBSCRIBER_EVENTS = frozenset({"sessions.changed", "session.message"})
EVENTS = [
    "tick", "health", "presence", "agent", "chat", "heartbeat", "cron", "shutdown",
    "sessions.changed", "session.message",
]  # fmt: skip


@dataclass(eq=False)
class _Peer:
    """One client connection: its scopes, subscription and per-connection event seq."""

    ws: ServerConnection
    scopes: frozenset[str] = frozenset()
    subscribed: bool = False
    seq: int = 0
    live: bool = False


class DemoGateway:
    """A seeded, protocol-faithful OpenClaw gateway on 127.0.0.1, run on its own thread.

    >>> with DemoGateway(seed=1) as gateway:
    ...     client = ocnb.GatewayClient(gateway.url, gateway.token)
    """

    def __init__(
        self,
        seed: int = 0,
        agents: int = 8,
        sessions: int = 60,
        protocol: int = 4,
        token: str | None = None,
        tick_interval: float = 30.0,
        speed: float = 1.0,
        *,
        port: int = 0,
        run_rate: float = 0.05,
        churn: bool = True,
        firehose: bool = False,
        health_interval: float = 60.0,
        handshake_timeout: float = 15.0,
        start_ms: int | None = None,
        paused: bool = False,
        http: bool = False,
    ) -> None:
        if protocol not in (3, 4):
            raise ValueError("the demo speaks protocol 3 or 4")
        self.protocol = protocol
        self._token = Secret(token or secrets.token_urlsafe(18))
        self.tick_interval = tick_interval
        self.speed = speed
        self.firehose = firehose
        self.health_interval = health_interval
        self.handshake_timeout = handshake_timeout
        self.world = World(
            seed=seed,
            agents=agents,
            sessions=sessions,
            start_ms=start_ms if start_ms is not None else int(time.time() * 1000),
            run_rate=1.0 if firehose else run_rate,
            churn=churn,
        )
        self.port = port
        self.boot_id = self.world.new_id()
        self.events_sent = 0
        self.internal_errors = 0
        self.connections_accepted = 0
        self._peers: set[_Peer] = set()
        self.admission = Admission(protocol, self._token)
        self.methods = Methods(self.world, protocol)
        self._refuse_starting = 0
        self._silent_until = 0.0
        self._skip_seq = 0
        self._delays: dict[str, float] = {}
        self._paused = paused
        self._loop_thread = LoopThread("ocnb-demo")
        self._server: Server | None = None
        self._front = HttpFront(self.world, self._token.reveal, self._ws_port) if http else None
        self._front_server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    # --- lifecycle -----------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The WebSocket URL to connect to (`ws://127.0.0.1:<port>/`)."""
        return f"ws://127.0.0.1:{self.port}/"

    @property
    def token(self) -> str:
        """The shared token clients must present."""
        return self._token.reveal()

    def _ws_port(self) -> int:
        assert self._server is not None
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    def __repr__(self) -> str:
        running = "running" if self._server is not None else "stopped"
        return f"<DemoGateway {self.url} protocol v{self.protocol} {running}>"

    def start(self) -> DemoGateway:
        """Start serving on a thread of its own; returns once the port is open."""
        if self._loop_thread.loop is not None:
            raise RuntimeError("this demo gateway was already started")
        self._loop_thread.start(self._open)
        return self

    def stop(self) -> None:
        """Send `shutdown`, close every connection with 1012 and stop the thread."""
        if not self._loop_thread.running:
            return
        with contextlib.suppress(RuntimeError):
            self._loop_thread.run(self._close(), 10)
        self._loop_thread.stop(10)

    def __enter__(self) -> DemoGateway:
        if self._loop_thread.loop is None:
            self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def _listen(self) -> None:
        """Open the listening socket (on `port`, or a free one the first time); with the HTTP
        side, the front listens there and the WebSocket server on a private port."""
        public = 0 if self._front is not None else self.port
        self._server = await serve(
            self._serve_peer, "127.0.0.1", public, compression=None, max_size=MAX_FRAME_BYTES
        )
        if self._front is None:
            self.port = self._server.sockets[0].getsockname()[1]
            return
        self._front_server = await asyncio.start_server(self._front.handle, "127.0.0.1", self.port)
        self.port = self._front_server.sockets[0].getsockname()[1]

    async def _stop_listening(self) -> None:
        for server in (self._front_server, self._server):
            if server is not None:
                server.close()
                await server.wait_closed()
        self._server = self._front_server = None

    async def _open(self) -> None:
        await self._listen()
        self._spawn(self._simulate())

    async def _close(self, reason: str = "gateway stopping") -> None:
        await self._broadcast_shutdown(reason, None)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._stop_listening()

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _call(self, fn: Callable[[], Any], timeout: float = 10) -> Any:
        """Run `fn` (a coroutine factory) on the gateway's loop and wait for it."""
        return self._loop_thread.run(fn(), timeout)

    # --- fault injection (call from any thread) -----------------------------------------------

    def drop_connections(self, code: int = CloseCode.INTERNAL_ERROR, reason: str = "") -> None:
        """Close every client connection abruptly with `code`."""

        async def drop() -> None:
            for peer in list(self._peers):
                await peer.ws.close(code, reason)

        self._call(drop)

    def go_silent(self, seconds: float) -> None:
        """Stall: hold back every frame (events, ticks, answers) for `seconds`."""
        self._silent_until = time.monotonic() + seconds

    def skip_seq(self, count: int = 1) -> None:
        """Make the next event to each connection jump `count` seq numbers."""
        self._skip_seq = count

    def send_malformed(self) -> None:
        """Send each live connection a handful of frames no client should accept."""
        garbage: list[str | bytes] = [
            "{not json",
            b"\x00\x01binary",
            "[1, 2, 3]",
            json.dumps({"type": "event", "event": 42}),
            json.dumps({"type": "res", "id": "no-such-request", "ok": True, "payload": {}}),
            json.dumps({"type": "event", "event": "health", "seq": "seven"}),
        ]

        async def send() -> None:
            for peer in list(self._peers):
                if peer.live:
                    for frame in garbage:
                        with contextlib.suppress(ConnectionClosed):
                            await peer.ws.send(frame)

        self._call(send)

    def slow_method(self, method: str, seconds: float) -> None:
        """Answer `method` `seconds` late, with the payload as it was when asked."""
        self._delays[method] = seconds

    def stale_usage(self, answers: int = 2) -> None:
        """Answer the next `answers` `sessions.usage` calls from a usage cache as it is now
        (`cacheStatus.status: "refreshing"`), as a real gateway does right after a restart:
        what happens meanwhile is missing from them."""

        async def remember() -> None:  # on the gateway's loop, which changes the world
            cached = [dataclasses.replace(session) for session in self.world.sessions.values()]
            self.methods.stale_usage = (cached, answers)

        self._call(remember)

    def pause(self) -> None:
        """Stop the scenario: no new activity until `resume()` (RPCs still work)."""
        self._paused = True

    def resume(self) -> None:
        """Let the scenario run again after `paused=True` (its clock starts from where it stood)."""
        self._paused = False

    def fast_forward(self, seconds: float) -> None:
        """Play `seconds` of scenario now, as fast as clients take it: the same seed from a
        paused start gives the same history. The live scenario waits meanwhile."""

        async def play() -> None:
            paused, self._paused = self._paused, True
            try:
                for _ in range(round(seconds * 10)):
                    await self._publish(self.world.advance(100))
            finally:
                self._paused = paused

        self._call(play, timeout=max(10.0, seconds))

    def refuse_while_starting(self, attempts: int = 2) -> None:
        """Answer the next `attempts` connects with `UNAVAILABLE startup-sidecars`."""
        self._refuse_starting = attempts

    def flood(
        self, count: int, variety: int = 5_000, rate: float | None = None
    ) -> list[tuple[int, float]]:
        """Send `count` realistic events (see `ocnb.demo_gateway.flood`) to every subscribed
        client, as fast as each takes them or at `rate` events/s, in bursts every 10 ms. For
        benchmarks: returns each burst's first `seq` and wall-clock send time (of the last
        client)."""
        frames = flood.render(variety, self.protocol)
        burst = count if rate is None else max(1, round(rate / 100))

        async def send() -> list[tuple[int, float]]:
            sent: list[tuple[int, float]] = []
            peers = [p for p in self._peers if p.live and p.subscribed]
            started = time.monotonic()
            for first in range(0, count, burst):
                if rate is not None:
                    await asyncio.sleep(max(0.0, started + first / rate - time.monotonic()))
                for peer in peers:
                    sent.append((peer.seq + 1, time.time()))
                    for n in range(first, min(count, first + burst)):
                        peer.seq += 1
                        await peer.ws.send(f'{frames[n % variety]},"seq":{peer.seq}}}')
            self.events_sent += count * len(peers)
            return sent

        bursts: list[tuple[int, float]] = self._call(send, timeout=max(60.0, count / 500))
        return bursts

    def restart(self, downtime: float = 1.0) -> None:
        """Announce a restart, close everyone with 1012, and reopen the port after `downtime`."""

        async def restart() -> None:
            await self._broadcast_shutdown("restart", int(downtime * 1000))
            await self._stop_listening()
            await asyncio.sleep(downtime)
            await self._listen()

        self._call(restart)

    def start_run(self, session_key: str, outcome: str | None = None) -> str:
        """Start a run on a session now (for tests that need one); return its run id."""

        async def start() -> str:
            session = self.world.sessions[session_key]
            happenings = self.world.start_run(session, outcome)  # type: ignore[arg-type]
            if not happenings:
                raise ValueError(f"{session_key} already has an active run")
            await self._publish(happenings)
            run: Run = happenings[0].data["run"]
            return run.id

        result: str = self._call(start)
        return result

    # --- the scenario --------------------------------------------------------------------------

    async def _simulate(self) -> None:
        """Scenario time follows the wall clock times `speed`, so the world's timestamps agree
        with the clients' clocks (a firehose instead steps 100 ms per turn of the loop)."""
        step_ms = 100
        last_health = last_tick = last_step = time.monotonic()
        owed_ms = 0.0
        while True:
            await asyncio.sleep(0 if self.firehose else step_ms / 1000)
            now = time.monotonic()
            elapsed_ms = step_ms if self.firehose else (now - last_step) * 1000
            owed_ms += elapsed_ms * self.speed
            last_step, advance = now, int(owed_ms)
            owed_ms -= advance
            try:
                if not self._paused:
                    await self._publish(self.world.advance(advance))
            except Exception:
                self.internal_errors += 1
                log.exception("demo gateway: scenario step failed")
            if now - last_tick >= self.tick_interval:
                last_tick = now
                await self._broadcast("tick", {"ts": self.world.now})
            if now - last_health >= self.health_interval:
                last_health = now
                self.world.health_version += 1
                await self._broadcast_health()

    async def _broadcast_health(self) -> None:
        version = {"presence": self.world.presence_version, "health": self.world.health_version}
        await self._broadcast(
            "health", payloads.health(self.world, self.protocol), state_version=version
        )

    async def _publish(self, happenings: list[Happening]) -> None:
        for happening in happenings:
            for event, payload in frames_for(happening, self.world, self.protocol):
                if event == "presence":
                    version = {
                        "presence": self.world.presence_version,
                        "health": self.world.health_version,
                    }
                    await self._broadcast(event, payload, state_version=version)
                elif event == "health":
                    await self._broadcast_health()
                else:
                    await self._broadcast(event, payload)

    # --- sending -------------------------------------------------------------------------------

    async def _broadcast(
        self, event: str, payload: Any, *, state_version: dict[str, int] | None = None
    ) -> None:
        for peer in list(self._peers):
            if not peer.live or (event in SUBSCRIBER_EVENTS and not peer.subscribed):
                continue
            await self._send_event(peer, event, payload, state_version)

    async def _send_event(
        self, peer: _Peer, event: str, payload: Any, state_version: dict[str, int] | None = None
    ) -> None:
        frame: dict[str, Any] = {"type": "event", "event": event, "payload": payload}
        if not (self.protocol < 4 and event in SUBSCRIBER_EVENTS):
            peer.seq += 1 + self._skip_seq
            frame["seq"] = peer.seq
        if state_version is not None:
            frame["stateVersion"] = state_version
        await self._send(peer, frame)
        self._skip_seq = 0
        self.events_sent += 1

    async def _send(self, peer: _Peer, frame: dict[str, Any]) -> None:
        stalled_for = self._silent_until - time.monotonic()
        if stalled_for > 0:  # a stalled gateway: frames wait, nothing goes out meanwhile
            await asyncio.sleep(stalled_for)
        with contextlib.suppress(ConnectionClosed):
            await peer.ws.send(json.dumps(frame, separators=(",", ":"), ensure_ascii=False))

    async def _broadcast_shutdown(self, reason: str, restart_ms: int | None) -> None:
        payload: dict[str, Any] = {"reason": reason}
        if restart_ms is not None:
            payload["restartExpectedMs"] = restart_ms
        await self._broadcast("shutdown", payload)
        for peer in list(self._peers):
            await peer.ws.close(CloseCode.SERVICE_RESTART, "service restart")

    # --- one connection ------------------------------------------------------------------------

    async def _serve_peer(self, ws: ServerConnection) -> None:
        self.connections_accepted += 1
        peer = _Peer(ws)
        nonce = self.world.new_id()
        challenge_ts = int(time.time() * 1000)
        challenge: dict[str, Any] = {"nonce": nonce, "ts": challenge_ts}
        if self.protocol >= 4:
            challenge["capabilities"] = ["model-catalog-snapshot"]
        await ws.send(
            json.dumps({"type": "event", "event": "connect.challenge", "payload": challenge})
        )
        try:
            async with asyncio.timeout(self.handshake_timeout):
                message = await ws.recv()
        except TimeoutError:
            await ws.close(CloseCode.NORMAL, "connect timeout")
            return
        except ConnectionClosed:
            return
        if not await self._handshake(peer, message, nonce, challenge_ts):
            return
        self._peers.add(peer)
        try:
            async for message in ws:
                self._spawn(self._answer(peer, message))
        except ConnectionClosed:
            pass
        finally:
            self._peers.discard(peer)

    async def _handshake(self, peer: _Peer, message: str | bytes, nonce: str, ts: int) -> bool:
        ws = peer.ws
        if len(message) > MAX_PREAUTH_BYTES:
            await ws.close(CloseCode.MESSAGE_TOO_BIG, "payload too large")
            return False
        try:
            request = json.loads(message)
            request_id = request["id"]
            assert request["type"] == "req"
        except Exception:
            await ws.close(CloseCode.POLICY_VIOLATION, "invalid handshake")
            return False
        try:
            if request.get("method") != "connect":
                raise Refusal("INVALID_REQUEST", "invalid handshake: first request must be connect")
            hello = self._admit(peer, request.get("params"), nonce, ts)
        except Refusal as refusal:
            await ws.send(
                json.dumps({"type": "res", "id": request_id, "ok": False, "error": refusal.error})
            )
            details = refusal.error.get("details", {})
            if details.get("code") == "PROTOCOL_MISMATCH":
                code = CloseCode.PROTOCOL_MISMATCH
            elif refusal.error["code"] == "UNAVAILABLE":
                code = CloseCode.TRY_AGAIN_LATER
            else:
                code = CloseCode.POLICY_VIOLATION
            await ws.close(code, refusal.error["message"][:120])
            return False
        peer.live = True
        await ws.send(json.dumps({"type": "res", "id": request_id, "ok": True, "payload": hello}))
        return True

    def _admit(self, peer: _Peer, params: Any, nonce: str, ts: int) -> dict[str, Any]:
        """Run the `connect` checks; return the `hello-ok` payload for this connection."""
        if self._refuse_starting > 0:
            self._refuse_starting -= 1
            refusal = Refusal("UNAVAILABLE", "gateway starting", {"reason": "startup-sidecars"})
            refusal.error.update(retryable=True, retryAfterMs=500)
            raise refusal
        admitted = self.admission.admit(params, nonce, ts)
        peer.scopes = frozenset(admitted.scopes)
        return payloads.hello_ok(
            self.world,
            self.protocol,
            conn_id=self.world.new_id(),
            scopes=list(admitted.scopes),
            methods=sorted(self.methods.table),
            events=EVENTS,
            tick_interval_ms=int(self.tick_interval * 1000),
            device_token=admitted.device_token,
            boot_id=self.boot_id,
        )

    async def _answer(self, peer: _Peer, message: str | bytes) -> None:
        try:
            request = json.loads(message)
            request_id, method = request["id"], request["method"]
        except Exception:
            await peer.ws.close(CloseCode.POLICY_VIOLATION, "invalid frame")
            return
        params = request.get("params") if isinstance(request.get("params"), dict) else {}
        frame: dict[str, Any] = {"type": "res", "id": request_id}
        happenings: list[Happening] = []
        try:
            payload, happenings = self.methods.call(peer, method, params)
            frame.update(ok=True, payload=payload)
        except Refusal as refusal:
            frame.update(ok=False, error=refusal.error)
        except Exception:
            self.internal_errors += 1
            log.exception("demo gateway: %s failed", method)
            frame.update(ok=False, error={"code": "INTERNAL", "message": "internal error"})
        delay = self._delays.get(method) if isinstance(method, str) else None
        if delay:
            await asyncio.sleep(delay)
        await self._send(peer, frame)
        await self._publish(happenings)
