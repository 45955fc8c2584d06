"""`DemoGateway`: a WebSocket server on loopback that speaks the OpenClaw gateway protocol.

It enforces the handshake the way real gateways do, answers the fleet RPCs from a seeded
`World`, streams that world's activity as events, and can misbehave on request (fault injection)
so clients can be tested against drops, silence, seq gaps, garbage and restarts.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import logging
import secrets
import threading
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from ocnb import protocol
from ocnb.demo import payloads
from ocnb.demo.world import Happening, Run, Session, World
from ocnb.protocol import CloseCode
from ocnb.secret import Secret

log = logging.getLogger(__name__)

CLIENT_IDS = frozenset(
    {
        "cli",
        "gateway-client",
        "openclaw-control-ui",
        "webchat",
        "openclaw-tui",
        "test",
        "probe",
        "openclaw-linux",
        "openclaw-macos",
        "openclaw-ios",
        "openclaw-android",
    }
)
CLIENT_MODES = frozenset({"cli", "backend", "ui", "webchat", "node", "probe", "test"})
CONNECT_KEYS = frozenset(
    {
        "minProtocol",
        "maxProtocol",
        "client",
        "role",
        "scopes",
        "caps",
        "commands",
        "permissions",
        "auth",
        "locale",
        "userAgent",
        "device",
        "pathEnv",
    }
)
MAX_PREAUTH_BYTES = 64 * 1024
SUBSCRIBER_EVENTS = frozenset({"sessions.changed", "session.message"})
READ, WRITE, ADMIN = "operator.read", "operator.write", "operator.admin"
EVENTS = [
    "tick",
    "health",
    "presence",
    "agent",
    "chat",
    "heartbeat",
    "cron",
    "shutdown",
    "sessions.changed",
    "session.message",
]


class Refusal(Exception):
    """Answer a request with `ok: false` and this error object."""

    def __init__(self, code: str, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.error: dict[str, Any] = {"code": code, "message": message}
        if details:
            self.error["details"] = details


def _invalid_params(method: str, problem: str) -> Refusal:
    return Refusal("INVALID_REQUEST", f"invalid {method} params: {problem}")


@dataclass(eq=False)
class _Peer:
    ws: ServerConnection
    scopes: frozenset[str] = frozenset()
    subscribed: bool = False
    seq: int = 0
    live: bool = False
    send_lock: asyncio.Lock = field(default_factory=asyncio.Lock)


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
        self._device_tokens: dict[str, str] = {}
        self._refuse_starting = 0
        self._silent_until = 0.0
        self._skip_seq = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: Server | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._started = threading.Event()

    # --- lifecycle -----------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/"

    @property
    def token(self) -> str:
        """The shared token clients must present."""
        return self._token.reveal()

    def __repr__(self) -> str:
        running = "running" if self._server is not None else "stopped"
        return f"<DemoGateway {self.url} protocol v{self.protocol} {running}>"

    def start(self) -> DemoGateway:
        """Start serving on a thread of its own; returns once the port is open."""
        if self._thread is not None:
            raise RuntimeError("this demo gateway was already started")
        loop = asyncio.new_event_loop()
        self._loop = loop
        errors: list[BaseException] = []

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self._open())
            except BaseException as exc:
                errors.append(exc)
                self._started.set()
                return
            self._started.set()
            loop.run_forever()
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

        self._thread = threading.Thread(target=run, name="ocnb-demo", daemon=True)
        self._thread.start()
        self._started.wait()
        if errors:
            raise errors[0]
        return self

    def stop(self) -> None:
        """Send `shutdown`, close every connection with 1012 and stop the thread."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None or loop.is_closed():
            return
        with contextlib.suppress(RuntimeError):
            asyncio.run_coroutine_threadsafe(self._close(), loop).result(10)
            loop.call_soon_threadsafe(loop.stop)
        thread.join(10)

    def __enter__(self) -> DemoGateway:
        if self._thread is None:
            self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def _open(self) -> None:
        self._server = await serve(
            self._serve_peer, "127.0.0.1", self.port, compression=None, max_size=26_214_400
        )
        self.port = self._server.sockets[0].getsockname()[1]
        self._spawn(self._simulate())

    async def _close(self, reason: str = "gateway stopping") -> None:
        await self._broadcast_shutdown(reason, None)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _call(self, fn: Callable[[], Any]) -> Any:
        """Run `fn` (a coroutine factory) on the gateway's loop and wait for it."""
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(fn(), self._loop).result(10)

    # --- fault injection (call from any thread) -----------------------------------------------

    def drop_connections(self, code: int = CloseCode.INTERNAL_ERROR, reason: str = "") -> None:
        """Close every client connection abruptly with `code`."""

        async def drop() -> None:
            for peer in list(self._peers):
                await peer.ws.close(code, reason)

        self._call(drop)

    def go_silent(self, seconds: float) -> None:
        """Send nothing at all (no events, ticks or answers) for `seconds`."""
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

    def refuse_while_starting(self, attempts: int = 2) -> None:
        """Answer the next `attempts` connects with `UNAVAILABLE startup-sidecars`."""
        self._refuse_starting = attempts

    def restart(self, downtime: float = 1.0) -> None:
        """Announce a restart, close everyone with 1012, and reopen the port after `downtime`."""

        async def restart() -> None:
            await self._broadcast_shutdown("restart", int(downtime * 1000))
            assert self._server is not None
            self._server.close()
            await self._server.wait_closed()
            await asyncio.sleep(downtime)
            self._server = await serve(
                self._serve_peer, "127.0.0.1", self.port, compression=None, max_size=26_214_400
            )

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
        step_ms = 100
        last_health = time.monotonic()
        last_tick = time.monotonic()
        while True:
            if not self.firehose:
                await asyncio.sleep(step_ms / 1000)
            else:
                await asyncio.sleep(0)
            now = time.monotonic()
            try:
                await self._publish(self.world.advance(int(step_ms * self.speed)))
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
            for event, payload in self._frames_for(happening):
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

    def _frames_for(self, happening: Happening) -> list[tuple[str, Any]]:
        """The events a real gateway of this protocol sends for one happening."""
        world, v = self.world, self.protocol
        kind, data = happening.kind, happening.data
        if kind.startswith("run."):
            return self._run_frames(kind, data["run"])
        if kind == "session.created":
            return [
                (
                    "sessions.changed",
                    payloads.sessions_changed(data["session"], world, v, reason="create"),
                )
            ]
        if kind == "session.deleted":
            return [("sessions.changed", payloads.session_deleted(data["session"], world, v))]
        if kind == "config.changed":
            frames: list[tuple[str, Any]] = [("health", None)]
            if v >= 4:
                path = f"agents.entries.{data['agent'].id}"
                frames.insert(
                    0,
                    ("config.changed", {"path": path, "hash": world.config_hash, "ts": world.now}),
                )
            return frames
        if kind == "presence":
            return [("presence", {"presence": payloads.presence_entries(world, v)})]
        if kind == "heartbeat":
            agent = data["agent"]
            return [
                (
                    "heartbeat",
                    {
                        "ts": world.now,
                        "agentId": agent.id,
                        "status": "ok-empty",
                        "reason": "interval",
                        "preview": "",
                        "durationMs": data["ms"],
                        "sessionKey": f"agent:{agent.id}:main",
                    },
                )
            ]
        if kind == "cron":
            return [("cron", _cron_event(data["agent"].id, data["job_id"], world.now))]
        return []

    def _run_frames(self, kind: str, run: Run) -> list[tuple[str, Any]]:
        world, v, session = self.world, self.protocol, run.session
        out: list[tuple[str, Any]] = []

        def agent(stream: str, data: dict[str, Any], **extra: Any) -> None:
            out.append(("agent", payloads.agent_event(run, world, v, stream, data, **extra)))

        def changed(**how: Any) -> None:
            out.append(
                ("sessions.changed", payloads.sessions_changed(session, world, v, run=run, **how))
            )

        if kind == "run.started":
            if v >= 4:
                agent("run_status", {"phase": "preparing_workspace"})
                out.append(
                    ("chat", payloads.chat_event(run, v, "status", phase="preparing_workspace"))
                )
                out.append(("task", _task_event(run, "created", "running")))
            out.append(
                (
                    "session.message",
                    payloads.session_message(session, world, v, run=run, role="user"),
                )
            )
            agent("lifecycle", {"phase": "start", "startedAt": run.started_at})
            if v >= 4:
                changed(reason="agent.run.started")
            changed(phase="start")
        elif kind == "run.model":
            if v >= 4:
                agent(
                    "lifecycle",
                    {"phase": "model", "provider": run.agent.provider, "model": run.agent.model},
                    lane="main",
                )
                changed(phase="model")
            else:
                changed(phase="message")
        elif kind == "run.delta":
            data: dict[str, Any] = {"text": run.text, "delta": run.last_delta}
            if v >= 4:
                data["itemId"] = f"{run.id}:1"
            agent("assistant", data)
            chat: dict[str, Any] = {"message": payloads.assistant_message(run.text, world.now)}
            if v >= 4:
                chat = {"deltaText": run.last_delta, **chat}
            out.append(("chat", payloads.chat_event(run, v, "delta", **chat)))
        elif kind in ("run.end", "run.abort"):
            aborted = kind == "run.abort"
            stop = "aborted" if aborted else "stop"
            if v >= 4 and not aborted:
                agent("usage", {"outputTokens": run.output_tokens})
            end: dict[str, Any] = {
                "phase": "end",
                "startedAt": run.started_at,
                "endedAt": world.now,
            }
            end.update(stopReason=stop, aborted=aborted, livenessState="working", status="done")
            if v >= 4:
                end.update(
                    replayInvalid=False,
                    executionSettled=True,
                    terminalReply={"disposition": "visible", "text": run.text},
                    terminalReceipt=_terminal_receipt(run),
                )
            agent("lifecycle", end)
            if aborted:
                out.append(("chat", payloads.chat_event(run, v, "aborted", stopReason="aborted")))
            else:
                final: dict[str, Any] = {"message": payloads.assistant_message(run.text, world.now)}
                if v >= 4:
                    final = {"stopReason": "stop", **final}
                out.append(("chat", payloads.chat_event(run, v, "final", **final)))
            out.append(
                (
                    "session.message",
                    payloads.session_message(session, world, v, run=run, role="assistant"),
                )
            )
            changed(phase="end")
            if v >= 4:
                changed(reason="agent.input.settled")
                out.append(
                    ("task", _task_event(run, "updated", "cancelled" if aborted else "succeeded"))
                )
        elif kind == "run.error":
            failure = payloads.error_observation(run)
            if v >= 4:
                agent(
                    "lifecycle",
                    {
                        "phase": "finishing",
                        "error": run.error,
                        "errorObservation": failure,
                        "aborted": False,
                        "livenessState": "blocked",
                        "endedAt": world.now,
                        "stopReason": "error",
                    },
                )
                agent(
                    "lifecycle",
                    {
                        "phase": "fallback_step",
                        "fallbackStepType": "fallback_step",
                        "fallbackStepFromModel": run.agent.model_ref,
                        "fallbackStepFromFailureReason": "auth",
                        "fallbackStepFromFailureDetail": run.error,
                        "fallbackStepChainPosition": 1,
                        "fallbackStepFinalOutcome": "chain_exhausted",
                    },
                )
                agent(
                    "lifecycle",
                    {
                        "phase": "error",
                        "error": run.error,
                        "errorObservation": failure,
                        "aborted": False,
                        "livenessState": "blocked",
                        "startedAt": run.started_at,
                        "endedAt": world.now,
                        "stopReason": "error",
                        "executionSettled": True,
                    },
                )
            else:
                agent(
                    "lifecycle",
                    {
                        "phase": "error",
                        "error": run.error,
                        "livenessState": "blocked",
                        "endedAt": world.now,
                    },
                )
            out.append(
                (
                    "chat",
                    payloads.chat_event(
                        run, v, "error", errorMessage=run.error, errorDetail=failure
                    ),
                )
            )
            if v >= 4:
                changed(phase="error")
                out.append(("task", _task_event(run, "updated", "failed")))
        return out

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
        if time.monotonic() < self._silent_until:
            return
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
            hello = self._connect(peer, request.get("params"), nonce, ts)
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

    def _connect(self, peer: _Peer, params: Any, nonce: str, ts: int) -> dict[str, Any]:
        """Check `connect` params as a real gateway does; return the hello-ok payload."""
        if not isinstance(params, dict):
            raise _invalid_params("connect", "at root: must be object")
        for key in params:
            if key not in CONNECT_KEYS:
                raise _invalid_params("connect", f"at root: unexpected property '{key}'")
        if self._refuse_starting > 0:
            self._refuse_starting -= 1
            refusal = Refusal("UNAVAILABLE", "gateway starting", {"reason": "startup-sidecars"})
            refusal.error.update(retryable=True, retryAfterMs=500)
            raise refusal
        low, high = params.get("minProtocol"), params.get("maxProtocol")
        if not (isinstance(low, int) and isinstance(high, int) and low <= self.protocol <= high):
            raise Refusal(
                "INVALID_REQUEST",
                "protocol mismatch",
                {
                    "code": "PROTOCOL_MISMATCH",
                    "clientMinProtocol": low,
                    "clientMaxProtocol": high,
                    "expectedProtocol": self.protocol,
                    "minimumProbeProtocol": 3,
                },
            )
        client: dict[str, Any] = _object(params.get("client"))
        if client.get("id") not in CLIENT_IDS:
            raise _invalid_params(
                "connect", "at /client/id: must be equal to one of the allowed values"
            )
        if client.get("mode") not in CLIENT_MODES:
            raise _invalid_params(
                "connect", "at /client/mode: must be equal to one of the allowed values"
            )
        device = params.get("device")
        auth: dict[str, Any] = _object(params.get("auth"))
        device_id = self._check_device(params, device, auth, nonce, ts) if device else None
        self._check_token(auth, device_id)
        requested = params.get("scopes")
        requested = requested if isinstance(requested, list) else []
        trusted = (client["id"], client["mode"]) == ("gateway-client", "backend") or (
            self.protocol >= 4 and (client["id"], client["mode"]) == ("cli", "cli")
        )
        granted = [s for s in requested if isinstance(s, str)] if device_id or trusted else []
        peer.scopes = frozenset(granted)
        device_token = None
        if device_id is not None:
            device_token = self._device_tokens.setdefault(device_id, secrets.token_urlsafe(24))
        return payloads.hello_ok(
            self.world,
            self.protocol,
            conn_id=self.world.new_id(),
            scopes=granted,
            methods=sorted(self._methods()),
            events=EVENTS,
            tick_interval_ms=int(self.tick_interval * 1000),
            device_token=device_token,
            boot_id=self.boot_id,
        )

    def _check_token(self, auth: dict[str, Any], device_id: str | None) -> None:
        token, device_token = auth.get("token"), auth.get("deviceToken")
        if token is None and device_token is not None and device_id is not None:
            if self._device_tokens.get(device_id) == device_token:
                return
            raise Refusal(
                "INVALID_REQUEST",
                "unauthorized: device token mismatch",
                {"code": "AUTH_DEVICE_TOKEN_MISMATCH"},
            )
        if token is None:
            if device_id is None:
                raise Refusal(
                    "NOT_PAIRED", "device identity required", {"code": "DEVICE_IDENTITY_REQUIRED"}
                )
            raise Refusal(
                "INVALID_REQUEST",
                "unauthorized: gateway token missing",
                {"code": "AUTH_TOKEN_MISSING", "recommendedNextStep": "update_auth_configuration"},
            )
        if not secrets.compare_digest(str(token), self.token):
            raise Refusal(
                "INVALID_REQUEST",
                "unauthorized: gateway token mismatch "
                "(use this gateway's gateway.auth.token or pair the device)",
                {
                    "code": "AUTH_TOKEN_MISMATCH",
                    "authReason": "token_mismatch",
                    "canRetryWithDeviceToken": False,
                    "recommendedNextStep": "update_auth_credentials",
                },
            )

    def _check_device(
        self, params: dict[str, Any], device: Any, auth: dict[str, Any], nonce: str, ts: int
    ) -> str:
        """Verify the device block's ed25519 signature over the v3 payload; return its id."""
        try:
            public = _unb64url(device["publicKey"])
            device_id = hashlib.sha256(public).hexdigest()
            if device.get("id") != device_id:
                raise Refusal(
                    "INVALID_REQUEST",
                    "device identity mismatch",
                    {"code": "DEVICE_AUTH_DEVICE_ID_MISMATCH"},
                )
            if device.get("nonce") != nonce:
                raise Refusal(
                    "INVALID_REQUEST",
                    "device nonce mismatch",
                    {"code": "DEVICE_AUTH_NONCE_MISMATCH"},
                )
            if abs(int(device.get("signedAt", 0)) - ts) > 120_000:
                raise Refusal(
                    "INVALID_REQUEST",
                    "device signature expired",
                    {"code": "DEVICE_AUTH_SIGNATURE_EXPIRED"},
                )
            client = params["client"]
            message = protocol.device_auth_payload(
                device_id=device_id,
                client_id=client["id"],
                client_mode=client["mode"],
                role=params.get("role", ""),
                scopes=params.get("scopes", []),
                signed_at=device["signedAt"],
                token=auth.get("token") or auth.get("deviceToken") or "",
                nonce=nonce,
                platform=client.get("platform", ""),
                device_family=client.get("deviceFamily", ""),
            )
            Ed25519PublicKey.from_public_bytes(public).verify(
                _unb64url(device["signature"]), message.encode()
            )
        except Refusal:
            raise
        except (InvalidSignature, KeyError, ValueError, TypeError) as exc:
            raise Refusal(
                "INVALID_REQUEST",
                "device signature invalid",
                {"code": "DEVICE_AUTH_SIGNATURE_INVALID"},
            ) from exc
        return device_id

    # --- RPCs ----------------------------------------------------------------------------------

    def _methods(self) -> dict[str, tuple[str, Callable[[_Peer, dict[str, Any]], Any]]]:
        return {
            "agents.list": (READ, self._agents_list),
            "sessions.list": (READ, self._sessions_list),
            "sessions.subscribe": (READ, self._subscribe),
            "sessions.unsubscribe": (READ, self._unsubscribe),
            "sessions.describe": (READ, self._describe),
            "sessions.usage": (READ, self._sessions_usage),
            "health": (READ, lambda peer, p: payloads.health(self.world, self.protocol, rpc=True)),
            "status": (
                READ,
                lambda peer, p: payloads.status(self.world, self.protocol, self._version),
            ),
            "system-presence": (
                READ,
                lambda peer, p: payloads.presence_entries(self.world, self.protocol),
            ),
            "usage.cost": (READ, self._usage_cost),
            "chat.send": (WRITE, self._chat_send),
            "chat.abort": (WRITE, self._chat_abort),
            "sessions.create": (WRITE, self._sessions_create),
            "sessions.delete": (WRITE, self._sessions_delete),
        }

    @property
    def _version(self) -> str:
        return "2026.9.6" if self.protocol >= 4 else "2026.5.7"

    async def _answer(self, peer: _Peer, message: str | bytes) -> None:
        try:
            request = json.loads(message)
            request_id, method = request["id"], request["method"]
        except Exception:
            await peer.ws.close(CloseCode.POLICY_VIOLATION, "invalid frame")
            return
        params = request.get("params") if isinstance(request.get("params"), dict) else {}
        frame: dict[str, Any] = {"type": "res", "id": request_id}
        try:
            frame.update(ok=True, payload=await self._dispatch(peer, method, params))
        except Refusal as refusal:
            frame.update(ok=False, error=refusal.error)
        except Exception:
            self.internal_errors += 1
            log.exception("demo gateway: %s failed", method)
            frame.update(ok=False, error={"code": "INTERNAL", "message": "internal error"})
        await self._send(peer, frame)

    async def _dispatch(self, peer: _Peer, method: Any, params: dict[str, Any]) -> Any:
        entry = self._methods().get(method) if isinstance(method, str) else None
        if entry is None:
            if ADMIN not in peer.scopes:
                raise _missing_scope(ADMIN, self.protocol)
            raise Refusal("INVALID_REQUEST", f"unknown method: {method}")
        scope, handler = entry
        satisfied = {READ: {READ, WRITE, ADMIN}, WRITE: {WRITE, ADMIN}}[scope]
        if not peer.scopes & satisfied:
            raise _missing_scope(scope, self.protocol)
        result = handler(peer, params)
        if asyncio.iscoroutine(result):
            result = await result
        return result

    def _agents_list(self, peer: _Peer, params: dict[str, Any]) -> Any:
        _closed("agents.list", params, ())
        return payloads.agents_list(self.world, self.protocol)

    def _sessions_list(self, peer: _Peer, params: dict[str, Any]) -> Any:
        allowed: tuple[str, ...] = ("limit", "agentId", "activeOnly", "search", "archived")
        if self.protocol >= 4:
            allowed += ("offset",)
        _closed("sessions.list", params, allowed)
        limit = _integer("sessions.list", params, "limit", minimum=1, default=100)
        offset = _integer("sessions.list", params, "offset", minimum=0, default=0)
        sessions = sorted(self.world.sessions.values(), key=lambda s: (-s.updated_at, s.key))
        agent_id = params.get("agentId")
        if agent_id is not None:
            sessions = [s for s in sessions if s.agent_id == agent_id]
        if params.get("activeOnly"):
            sessions = [s for s in sessions if s.active_run_id is not None]
        search = params.get("search")
        if isinstance(search, str) and search:
            sessions = [s for s in sessions if search.lower() in s.key.lower()]
        page = sessions[offset : offset + limit]
        rows = [payloads.session_row(s, self.world, self.protocol) for s in page]
        return payloads.sessions_list(
            self.world, self.protocol, rows, total=len(sessions), offset=offset, limit=limit
        )

    def _subscribe(self, peer: _Peer, params: dict[str, Any]) -> Any:
        peer.subscribed = True
        if params and self.protocol >= 4:
            return {"subscribed": True, "list": self._sessions_list(peer, params)}
        return {"subscribed": True}

    def _unsubscribe(self, peer: _Peer, params: dict[str, Any]) -> Any:
        peer.subscribed = False
        return {"subscribed": False}

    def _describe(self, peer: _Peer, params: dict[str, Any]) -> Any:
        _closed("sessions.describe", params, ("key",))
        session = self.world.sessions.get(params.get("key", ""))
        row = payloads.session_row(session, self.world, self.protocol) if session else None
        return {"session": row}

    def _sessions_usage(self, peer: _Peer, params: dict[str, Any]) -> Any:
        allowed: tuple[str, ...] = ("agentId", "startDate", "endDate", "limit")
        if self.protocol >= 4:
            allowed += ("agentScope",)
        _closed("sessions.usage", params, allowed)
        return payloads.sessions_usage(self.world, self.protocol)

    def _usage_cost(self, peer: _Peer, params: dict[str, Any]) -> Any:
        _closed("usage.cost", params, ("agentScope", "days", "agentId"))
        return payloads.usage_cost(
            self.world, _integer("usage.cost", params, "days", minimum=1, default=30)
        )

    async def _chat_send(self, peer: _Peer, params: dict[str, Any]) -> Any:
        _closed("chat.send", params, ("sessionKey", "message", "idempotencyKey", "attachments"))
        key = params.get("sessionKey")
        if not isinstance(key, str) or not key.startswith("agent:"):
            raise _invalid_params("chat.send", "at /sessionKey: must be a session key")
        agent_id = key.split(":")[1]
        if agent_id not in self.world.agents:
            raise Refusal("INVALID_REQUEST", f"unknown agent: {agent_id}")
        session = self.world.sessions.get(key) or self._create_session(agent_id, key, None)
        happenings = self.world.start_run(session)
        if not happenings:
            raise Refusal("UNAVAILABLE", "session busy", {"reason": "session-busy"})
        await self._publish(happenings)
        return {"runId": happenings[0].data["run"].id, "status": "started"}

    async def _chat_abort(self, peer: _Peer, params: dict[str, Any]) -> Any:
        _closed("chat.abort", params, ("sessionKey", "runId"))
        happenings = self.world.abort(str(params.get("runId")))
        await self._publish(happenings)
        return {"ok": True, "aborted": bool(happenings)}

    async def _sessions_create(self, peer: _Peer, params: dict[str, Any]) -> Any:
        _closed("sessions.create", params, ("agentId", "key", "label"))
        agent_id, key = params.get("agentId"), params.get("key")
        if agent_id not in self.world.agents or not isinstance(key, str):
            raise _invalid_params("sessions.create", "at /agentId: unknown agent")
        session = self._create_session(agent_id, key, params.get("label"))
        await self._publish([Happening("session.created", {"session": session})])
        return {"ok": True, "key": session.key, "sessionId": session.session_id}

    async def _sessions_delete(self, peer: _Peer, params: dict[str, Any]) -> Any:
        _closed("sessions.delete", params, ("key",))
        session = self.world.sessions.pop(str(params.get("key")), None)
        if session is not None:
            await self._publish([Happening("session.deleted", {"session": session})])
        return {"ok": True, "deleted": session is not None}

    def _create_session(self, agent_id: str, key: str, label: Any) -> Session:
        return self.world.add_session(agent_id, key, label if isinstance(label, str) else None)


def _missing_scope(scope: str, protocol: int) -> Refusal:
    if protocol < 4:
        return Refusal("INVALID_REQUEST", f"missing scope: {scope}")
    return Refusal(
        "FORBIDDEN",
        f"missing scope: {scope}",
        {"code": "MISSING_SCOPE", "missingScope": scope, "requiredScopes": [scope]},
    )


def _closed(method: str, params: dict[str, Any], allowed: tuple[str, ...]) -> None:
    for key in params:
        if key not in allowed:
            raise _invalid_params(method, f"at root: unexpected property '{key}'")


def _integer(method: str, params: dict[str, Any], key: str, *, minimum: int, default: int) -> int:
    value = params.get(key, default)
    if type(value) is not int:
        raise _invalid_params(method, f"at /{key}: must be integer")
    if value < minimum:
        raise _invalid_params(method, f"at /{key}: must be >= {minimum}")
    return value


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _terminal_receipt(run: Run) -> dict[str, Any]:
    requested = {"provider": run.agent.provider, "model": run.agent.model}
    return {
        "runId": run.id,
        "sessionId": run.session.session_id,
        "turnId": run.id,
        "requested": requested,
        "effective": {**requested, "responseModel": run.agent.model},
        "rerouted": False,
        "terminalDisposition": "visible",
        "successfulToolNames": [],
    }


def _task_event(run: Run, action: str, status: str) -> dict[str, Any]:
    return {
        "action": action,
        "task": {
            "id": f"task-{run.id[:8]}",
            "status": status,
            "agentId": run.agent.id,
            "sessionKey": run.session.key,
            "runId": run.id,
            "runtime": "cli",
        },
    }


def _cron_event(agent_id: str, job_id: str, now: int) -> dict[str, Any]:
    return {
        "jobId": job_id,
        "action": "updated",
        "nextRunAtMs": now + 3_600_000,
        "job": {
            "id": job_id,
            "declarationKey": f"report:{agent_id}",
            "displayName": f"Hourly report ({agent_id})",
            "agentId": agent_id,
            "name": f"report-{agent_id}",
            "enabled": True,
            "createdAtMs": now - 86_400_000,
            "updatedAtMs": now,
            "schedule": {"kind": "every", "everyMs": 3_600_000, "anchorMs": 0},
            "sessionTarget": "main",
            "wakeMode": "now",
            "delivery": {"mode": "none"},
            "payload": {
                "kind": "agentTurn",
                "message": "Post the hourly report.",
                "toolsAllow": ["read"],
            },
            "scheduledToolPolicy": {"mode": "allowlist", "version": 1},
            "state": {"nextRunAtMs": now + 3_600_000},
        },
    }
