"""The OpenClaw gateway protocol (v3 and v4): frames, connect params and errors. No I/O.

Everything here is a pure function of its arguments, so it is tested by feeding it frames.
"""

from __future__ import annotations

import json
import platform as _platform
from dataclasses import dataclass
from enum import IntEnum
from typing import Any, Protocol

import orjson

from ocnb.errors import (
    AuthError,
    GatewayUnavailable,
    InvalidRequest,
    PairingRequired,
    ProtocolError,
    ProtocolMismatch,
    RateLimited,
    RpcError,
    ScopeError,
)
from ocnb.secret import Secret

MIN_PROTOCOL = 3
MAX_PROTOCOL = 4
# A monitor connects as the CLI: accepted by every release, and invisible in presence.
CLIENT_ID = "cli"
CLIENT_MODE = "cli"
ROLE = "operator"
DEFAULT_SCOPES: tuple[str, ...] = ("operator.read",)
DEFAULT_TICK_INTERVAL_MS = 30_000
INT64_MAX = 2**63 - 1  # a BIGINT's largest value: the store logs `seq` and counts as BIGINT


class CloseCode(IntEnum):
    """WebSocket close codes the gateway and its clients use."""

    NORMAL = 1000
    GOING_AWAY = 1001
    PROTOCOL_MISMATCH = 1002
    ABNORMAL = 1006
    POLICY_VIOLATION = 1008
    MESSAGE_TOO_BIG = 1009
    INTERNAL_ERROR = 1011
    SERVICE_RESTART = 1012
    TRY_AGAIN_LATER = 1013
    TICK_TIMEOUT = 4000
    CLIENT_INVALIDATED = 4001


@dataclass(frozen=True, slots=True)
class Request:
    """A `req` frame."""

    id: str
    method: str
    params: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Response:
    """A `res` frame: `payload` when `ok`, else `error`."""

    id: str
    ok: bool
    payload: Any = None
    error: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Event:
    """An `event` frame. `seq` is per connection; `state_version` rides on presence/health."""

    event: str
    payload: Any = None
    seq: int | None = None
    state_version: dict[str, Any] | None = None


Frame = Request | Response | Event


def encode_request(request_id: str, method: str, params: dict[str, Any] | None = None) -> str:
    """Serialise a `req` frame."""
    frame = {"type": "req", "id": request_id, "method": method, "params": params or {}}
    return json.dumps(frame, separators=(",", ":"), ensure_ascii=False)


def decode_frame(data: str | bytes) -> Frame:
    """Parse one frame; raise `ProtocolError` for anything that is not a valid frame."""
    if isinstance(data, bytes):
        raise ProtocolError(f"binary frame of {len(data)} bytes; the gateway sends text")
    try:
        frame = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise ProtocolError(f"frame is not JSON ({_excerpt(data)})") from exc
    if not isinstance(frame, dict):
        raise ProtocolError(f"frame is a JSON {type(frame).__name__}, not an object")
    kind = frame.get("type")
    if kind == "event":
        return _decode_event(frame)
    if kind == "res":
        return _decode_response(frame)
    if kind == "req":
        return Request(
            id=_require_str(frame, "id"),
            method=_require_str(frame, "method"),
            params=_dict(frame.get("params")),
        )
    raise ProtocolError(f"unknown frame type {_excerpt(repr(kind))}")


def _decode_event(frame: dict[str, Any]) -> Event:
    seq = frame.get("seq")
    if seq is not None and (type(seq) is not int or not 0 <= seq <= INT64_MAX):
        raise ProtocolError(f"event seq must be an integer 0 to 2**63-1, got {_excerpt(repr(seq))}")
    state_version = frame.get("stateVersion")
    return Event(
        event=_require_str(frame, "event"),
        payload=frame.get("payload"),
        seq=seq,
        state_version=state_version if isinstance(state_version, dict) else None,
    )


def _decode_response(frame: dict[str, Any]) -> Response:
    ok = frame.get("ok")
    if not isinstance(ok, bool):
        raise ProtocolError("response without a boolean 'ok'")
    error = frame.get("error")
    if not ok and not isinstance(error, dict):
        error = {"code": "UNKNOWN", "message": "error response without an error object"}
    return Response(
        id=_require_str(frame, "id"),
        ok=ok,
        payload=frame.get("payload"),
        error=None if ok else error,
    )


def _require_str(frame: dict[str, Any], key: str) -> str:
    value = frame.get(key)
    if not isinstance(value, str) or not value:
        raise ProtocolError(f"{frame.get('type')} frame without a string {key!r}")
    return value


def _excerpt(text: str, limit: int = 80) -> str:
    """A short, single-line excerpt: never put a whole hostile frame into a message."""
    flat = text.replace("\n", " ")
    return flat if len(flat) <= limit else f"{flat[:limit]}… ({len(text)} chars)"


# --- the handshake -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Challenge:
    """The `connect.challenge` the gateway sends first: sign its nonce and ts."""

    nonce: str
    ts: int
    capabilities: tuple[str, ...] = ()


def parse_challenge(event: Event) -> Challenge:
    """Read a `connect.challenge` event; raise `ProtocolError` if it is not one."""
    payload = event.payload
    if event.event != "connect.challenge" or not isinstance(payload, dict):
        raise ProtocolError(f"expected connect.challenge, got event {event.event!r}")
    nonce, ts = payload.get("nonce"), payload.get("ts")
    if not isinstance(nonce, str) or not nonce or type(ts) is not int or ts < 0:
        raise ProtocolError("connect.challenge without a nonce and a non-negative integer ts")
    caps = payload.get("capabilities")
    capabilities = tuple(c for c in caps if isinstance(c, str)) if isinstance(caps, list) else ()
    return Challenge(nonce=nonce, ts=ts, capabilities=capabilities)


class DeviceSigner(Protocol):
    """What the handshake needs of a device identity (see `ocnb.auth.DeviceIdentity`)."""

    @property
    def device_id(self) -> str: ...

    @property
    def public_key(self) -> str: ...

    def sign(self, message: str) -> str: ...


def client_platform() -> str:
    """The platform name OpenClaw clients report (`linux`, `macos`, `windows`, ...)."""
    system = _platform.system().lower()
    return {"darwin": "macos"}.get(system, system or "unknown")


def device_auth_payload(
    *,
    device_id: str,
    client_id: str,
    client_mode: str,
    role: str,
    scopes: tuple[str, ...] | list[str],
    signed_at: int,
    token: str,
    nonce: str,
    platform: str,
    device_family: str = "",
) -> str:
    """The exact `v3|…` string a device signs to prove itself during `connect`."""
    return "|".join(
        [
            "v3",
            device_id,
            client_id,
            client_mode,
            role,
            ",".join(scopes),
            str(signed_at),
            token,
            nonce,
            platform.lower(),
            device_family.lower(),
        ]
    )


def connect_params(
    *,
    auth: dict[str, str],
    challenge: Challenge,
    client_version: str,
    scopes: tuple[str, ...] = DEFAULT_SCOPES,
    caps: tuple[str, ...] = (),
    device: DeviceSigner | None = None,
    platform: str | None = None,
    min_protocol: int = MIN_PROTOCOL,
    max_protocol: int = MAX_PROTOCOL,
) -> dict[str, Any]:
    """Build the params of the `connect` request, signing the challenge when a device is given.

    `auth` holds `token`, `deviceToken` and/or `password` exactly as they are to be sent.
    """
    platform = platform or client_platform()
    params: dict[str, Any] = {
        "minProtocol": min_protocol,
        "maxProtocol": max_protocol,
        "client": {
            "id": CLIENT_ID,
            "version": client_version,
            "platform": platform,
            "mode": CLIENT_MODE,
        },
        "role": ROLE,
        "scopes": list(scopes),
        "caps": list(caps),
        "auth": dict(auth),
    }
    if device is not None:
        payload = device_auth_payload(
            device_id=device.device_id,
            client_id=CLIENT_ID,
            client_mode=CLIENT_MODE,
            role=ROLE,
            scopes=scopes,
            signed_at=challenge.ts,
            token=auth.get("token") or auth.get("deviceToken") or "",
            nonce=challenge.nonce,
            platform=platform,
        )
        params["device"] = {
            "id": device.device_id,
            "publicKey": device.public_key,
            "signature": device.sign(payload),
            "signedAt": challenge.ts,
            "nonce": challenge.nonce,
        }
    return params


@dataclass(frozen=True, slots=True)
class Hello:
    """What `hello-ok` tells about the gateway and this connection."""

    protocol: int
    server: dict[str, Any]
    features: dict[str, Any]
    snapshot: dict[str, Any]
    policy: dict[str, Any]
    role: str | None
    scopes: tuple[str, ...]
    device_token: Secret | None = None

    @property
    def server_version(self) -> str | None:
        version = self.server.get("version")
        return version if isinstance(version, str) else None

    @property
    def tick_interval_ms(self) -> int:
        value = self.policy.get("tickIntervalMs")
        is_positive_int = type(value) is int and value > 0
        return value if is_positive_int else DEFAULT_TICK_INTERVAL_MS  # type: ignore[return-value]

    @property
    def max_payload(self) -> int | None:
        """The largest frame, in bytes, the gateway says it handles (`policy.maxPayload`)."""
        value = self.policy.get("maxPayload")
        return value if type(value) is int and value > 0 else None

    @property
    def methods(self) -> frozenset[str]:
        methods = self.features.get("methods")
        if not isinstance(methods, list):
            return frozenset()
        return frozenset(m for m in methods if isinstance(m, str))


def parse_hello(payload: Any) -> Hello:
    """Read the `hello-ok` payload of a successful `connect`; raise `ProtocolError` otherwise."""
    if not isinstance(payload, dict) or payload.get("type") != "hello-ok":
        raise ProtocolError("connect succeeded without a hello-ok payload")
    protocol = payload.get("protocol")
    if type(protocol) is not int:
        raise ProtocolError("hello-ok without an integer protocol")
    if not MIN_PROTOCOL <= protocol <= MAX_PROTOCOL:
        raise ProtocolError(
            f"hello-ok names protocol {_excerpt(str(protocol))}; this client offered "
            f"{MIN_PROTOCOL} to {MAX_PROTOCOL}"
        )
    auth = _dict(payload.get("auth"))
    scopes = auth.get("scopes")
    token = auth.get("deviceToken")
    return Hello(
        protocol=protocol,
        server=_dict(payload.get("server")),
        features=_dict(payload.get("features")),
        snapshot=_dict(payload.get("snapshot")),
        policy=_dict(payload.get("policy")),
        role=_str(auth.get("role")),
        scopes=tuple(s for s in scopes if isinstance(s, str)) if isinstance(scopes, list) else (),
        device_token=Secret(token) if isinstance(token, str) and token else None,
    )


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


# --- errors --------------------------------------------------------------------------------

_AUTH_DETAIL_PREFIXES = ("AUTH_", "DEVICE_AUTH_")


def error_from_response(
    error: dict[str, Any], *, method: str | None = None, device_id: str | None = None
) -> RpcError:
    """Turn a response's `error` object into the matching `RpcError` subclass.

    The class is chosen from `code` and `details.code`. Only v3's scope errors, which carry no
    details, are recognised by their documented legacy message `missing scope: …`.
    """
    code = _str(error.get("code")) or "UNKNOWN"
    message = _str(error.get("message")) or ""
    details = _dict(error.get("details"))
    detail_code = _str(details.get("code")) or ""
    retry_ms = non_negative_number(error.get("retryAfterMs", details.get("retryAfterMs")))
    retryable = error.get("retryable")
    args = (code, _excerpt(message, 500), details)
    kwargs: dict[str, Any] = {
        "method": method,
        "retryable": retryable if isinstance(retryable, bool) else None,
        "retry_after": None if retry_ms is None else retry_ms / 1000,
    }

    if detail_code == "PROTOCOL_MISMATCH":
        return ProtocolMismatch(*args, **kwargs)
    if detail_code == "PAIRING_REQUIRED" or code == "NOT_PAIRED":
        return PairingRequired(*args, device_id=device_id, **kwargs)
    if detail_code == "AUTH_RATE_LIMITED":
        return RateLimited(*args, **kwargs)
    if detail_code in ("MISSING_SCOPE", "AUTH_SCOPE_MISMATCH") or message.startswith(
        "missing scope"
    ):
        return ScopeError(*args, **kwargs)
    if detail_code.startswith(_AUTH_DETAIL_PREFIXES):
        return AuthError(*args, **kwargs)
    if code == "UNAVAILABLE":
        return GatewayUnavailable(*args, **kwargs)
    if code == "INVALID_REQUEST":
        return InvalidRequest(*args, **kwargs)
    return RpcError(*args, **kwargs)


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def non_negative_number(value: Any) -> float | None:
    """`value` if it is a real non-negative number (bools and NaN excluded), else None."""
    if type(value) not in (int, float) or not value >= 0:
        return None
    return float(value)
