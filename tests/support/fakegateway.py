"""A scriptable stand-in for a gateway: a real WebSocket server on loopback, on its own thread.

Each test scripts what it needs (answers, delays, errors, drops) and inspects what the client
sent. It speaks just enough of the protocol for the client tests; `ocnb.demo_gateway` is the
faithful one.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import itertools
import json
import ssl
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from ocnb.loop import LoopThread

Answer = Callable[[dict[str, Any]], Awaitable[Any]]


class Reject(Exception):
    """Raise from a method to answer with `ok: false`."""

    def __init__(self, code: str, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.error: dict[str, Any] = {"code": code, "message": message}
        if details:
            self.error["details"] = details


@dataclass
class Peer:
    """One accepted connection and what happened on it."""

    ws: ServerConnection
    connect_params: dict[str, Any] | None = None
    requests: list[dict[str, Any]] = field(default_factory=list)
    seq: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    close_code: int | None = None


class FakeGateway:
    """A loopback WebSocket server speaking the gateway handshake and scripted RPCs."""

    def __init__(
        self,
        *,
        protocol: int = 4,
        token: str = "fake-token-123",
        tick_interval_ms: int = 30_000,
        version: str = "2026.9.6-fake",
        tls: ssl.SSLContext | None = None,
        max_payload: int = 26_214_400,
    ) -> None:
        self.protocol = protocol
        self.max_payload = max_payload
        self.tls = tls
        self.token = token
        self.tick_interval_ms = tick_interval_ms
        self.version = version
        self.methods: dict[str, Answer] = {
            "sessions.subscribe": _constant({"subscribed": True}),
            "agents.list": _constant({"defaultId": "main", "agents": [{"id": "main"}]}),
        }
        # Called with the connect params; return an error object to refuse the connect.
        self.connect_check: Callable[[dict[str, Any]], dict[str, Any] | None] | None = None
        # Called once a client is live on a connection (after hello-ok was sent).
        self.on_hello: Callable[[Peer], Awaitable[None]] | None = None
        self.peers: list[Peer] = []
        self.attempts: list[float] = []  # when each TCP connection was accepted
        self.accept = True  # False: close every new connection before the challenge
        self._loop_thread = LoopThread("fake-gateway")
        self._server: Server | None = None
        self._tasks: set[asyncio.Future[Any]] = set()
        self.port = 0

    # --- lifecycle ---------------------------------------------------------------------------

    def __enter__(self) -> FakeGateway:
        self._loop_thread.start(self._start)
        return self

    def __exit__(self, *exc: object) -> None:
        self.run(self._stop())
        self._loop_thread.stop(5)

    async def _start(self) -> None:
        self._server = await serve(self._handle, "127.0.0.1", 0, compression=None, ssl=self.tls)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _stop(self) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    @property
    def url(self) -> str:
        return f"{'wss' if self.tls else 'ws'}://127.0.0.1:{self.port}/"

    def run(self, coro: Coroutine[Any, Any, Any], timeout: float = 10) -> Any:
        """Run a coroutine on the server's loop from the test thread."""
        return self._loop_thread.run(coro, timeout)

    # --- scripting helpers (call from the test thread) ---------------------------------------

    def answer(self, method: str, payload: Any = None, *, delay: float = 0.0) -> None:
        async def respond(params: dict[str, Any]) -> Any:
            await asyncio.sleep(delay)
            return payload

        self.methods[method] = respond

    def emit(
        self, event: str, payload: Any = None, *, peer: Peer | None = None, **extra: Any
    ) -> None:
        self.run(self.send_event(peer or self.peers[-1], event, payload, **extra))

    def send_raw(self, data: str | bytes, peer: Peer | None = None) -> None:
        self.run((peer or self.peers[-1]).ws.send(data))

    def drop(self, code: int = 1011, reason: str = "", peer: Peer | None = None) -> None:
        self.run((peer or self.peers[-1]).ws.close(code, reason))

    @staticmethod
    async def send_event(peer: Peer, event: str, payload: Any = None, **extra: Any) -> None:
        frame: dict[str, Any] = {"type": "event", "event": event, "payload": payload}
        frame["seq"] = extra.pop("seq") if "seq" in extra else next(peer.seq)
        frame.update(extra)
        await peer.ws.send(json.dumps(frame))

    def live_peers(self) -> list[Peer]:
        return [p for p in self.peers if p.connect_params is not None and p.close_code is None]

    # --- the server side ---------------------------------------------------------------------

    def _spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _handle(self, ws: ServerConnection) -> None:
        self.attempts.append(time.monotonic())
        if not self.accept:
            await ws.close(1013, "not now")
            return
        peer = Peer(ws)
        self.peers.append(peer)
        try:
            nonce = f"nonce-{len(self.peers)}"
            ts = int(time.time() * 1000)
            challenge = {"nonce": nonce, "ts": ts}
            await ws.send(
                json.dumps({"type": "event", "event": "connect.challenge", "payload": challenge})
            )
            request = json.loads(await ws.recv())
            if not await self._handshake(peer, request, nonce, ts):
                return
            async for message in ws:
                request = json.loads(message)
                peer.requests.append(request)
                self._spawn(self._answer(peer, request))
        except ConnectionClosed:
            pass
        finally:
            peer.close_code = ws.close_code

    async def _handshake(self, peer: Peer, request: dict[str, Any], nonce: str, ts: int) -> bool:
        params = request["params"]
        error = self._check_connect(params, nonce, ts)
        if error is None and self.connect_check is not None:
            error = self.connect_check(params)
        if error is not None:
            await peer.ws.send(
                json.dumps({"type": "res", "id": request["id"], "ok": False, "error": error})
            )
            await peer.ws.close(
                1002 if error.get("details", {}).get("code") == "PROTOCOL_MISMATCH" else 1008
            )
            return False
        peer.connect_params = params
        hello = {
            "type": "hello-ok",
            "protocol": self.protocol,
            "server": {"version": self.version, "connId": f"conn-{len(self.peers)}"},
            "features": {"methods": sorted(self.methods), "events": ["tick", "health"]},
            "snapshot": {
                "presence": [],
                "health": {},
                "stateVersion": {"presence": 1, "health": 1},
            },
            "auth": {"role": "operator", "scopes": params.get("scopes", [])},
            "policy": {
                "maxPayload": self.max_payload,
                "maxBufferedBytes": 52428800,
                "tickIntervalMs": self.tick_interval_ms,
            },
        }
        await peer.ws.send(
            json.dumps({"type": "res", "id": request["id"], "ok": True, "payload": hello})
        )
        if self.on_hello is not None:
            self._spawn(self.on_hello(peer))
        return True

    def _check_connect(self, params: dict[str, Any], nonce: str, ts: int) -> dict[str, Any] | None:
        if not params["minProtocol"] <= self.protocol <= params["maxProtocol"]:
            return {
                "code": "INVALID_REQUEST",
                "message": "protocol mismatch",
                "details": {"code": "PROTOCOL_MISMATCH", "expectedProtocol": self.protocol},
            }
        if params.get("auth", {}).get("token") != self.token:
            return {
                "code": "INVALID_REQUEST",
                "message": "unauthorized: gateway token mismatch",
                "details": {
                    "code": "AUTH_TOKEN_MISMATCH",
                    "recommendedNextStep": "update_auth_credentials",
                },
            }
        device = params.get("device")
        if device is not None and not _signature_valid(params, device, nonce, ts):
            return {
                "code": "INVALID_REQUEST",
                "message": "device signature invalid",
                "details": {"code": "DEVICE_AUTH_SIGNATURE_INVALID"},
            }
        return None

    async def _answer(self, peer: Peer, request: dict[str, Any]) -> None:
        method = self.methods.get(request["method"])
        frame: dict[str, Any] = {"type": "res", "id": request["id"]}
        try:
            if method is None:
                raise Reject("INVALID_REQUEST", f"unknown method: {request['method']}")
            frame.update(ok=True, payload=await method(request.get("params", {})))
        except Reject as rejection:
            frame.update(ok=False, error=rejection.error)
        except asyncio.CancelledError:
            return
        with contextlib.suppress(ConnectionClosed):
            await peer.ws.send(json.dumps(frame))


def _constant(payload: Any) -> Answer:
    async def respond(params: dict[str, Any]) -> Any:
        return payload

    return respond


def _unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _signature_valid(params: dict[str, Any], device: dict[str, Any], nonce: str, ts: int) -> bool:
    """Check the device block the way GATEWAY.md describes it, written out independently."""
    client, auth = params["client"], params.get("auth", {})
    message = "|".join(
        [
            "v3",
            device["id"],
            client["id"],
            client["mode"],
            params["role"],
            ",".join(params["scopes"]),
            str(device["signedAt"]),
            auth.get("token") or auth.get("deviceToken") or "",
            device["nonce"],
            client["platform"].lower(),
            "",
        ]
    )
    try:
        Ed25519PublicKey.from_public_bytes(_unb64url(device["publicKey"])).verify(
            _unb64url(device["signature"]), message.encode()
        )
    except Exception:
        return False
    device_id = hashlib.sha256(_unb64url(device["publicKey"])).hexdigest()
    return device["id"] == device_id and device["nonce"] == nonce and device["signedAt"] == ts
