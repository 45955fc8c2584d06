"""protocol.py: frames, connect params and errors, tested by feeding them in. No sockets."""

from __future__ import annotations

import base64
import hashlib
import json

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from ocnb import protocol
from ocnb.auth import DeviceIdentity
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
from ocnb.protocol import Challenge, Event, Request, Response

# Error objects as real gateways sent them (2026.9.6 and 2026.5.7, see shared/GATEWAY.md).
TOKEN_MISMATCH_V4 = {
    "code": "INVALID_REQUEST",
    "message": "unauthorized: gateway token mismatch (use this gateway's gateway.auth.token or "
    "pair the device)",
    "details": {
        "code": "AUTH_TOKEN_MISMATCH",
        "authReason": "token_mismatch",
        "canRetryWithDeviceToken": False,
        "recommendedNextStep": "update_auth_credentials",
    },
}
PROTOCOL_MISMATCH_V4 = {
    "code": "INVALID_REQUEST",
    "message": "protocol mismatch",
    "details": {
        "code": "PROTOCOL_MISMATCH",
        "clientMinProtocol": 3,
        "clientMaxProtocol": 3,
        "expectedProtocol": 4,
        "minimumProbeProtocol": 3,
    },
}


def test_encode_request_is_a_compact_req_frame() -> None:
    frame = json.loads(protocol.encode_request("7", "sessions.list", {"limit": 5}))
    assert frame == {"type": "req", "id": "7", "method": "sessions.list", "params": {"limit": 5}}


def test_decode_event_keeps_seq_and_state_version() -> None:
    frame = protocol.decode_frame(
        '{"type":"event","event":"presence","payload":[],"seq":3,'
        '"stateVersion":{"presence":9,"health":2}}'
    )
    assert frame == Event("presence", [], 3, {"presence": 9, "health": 2})


def test_decode_responses_ok_and_error() -> None:
    ok = protocol.decode_frame('{"type":"res","id":"1","ok":true,"payload":{"a":1}}')
    assert ok == Response("1", True, {"a": 1})
    error = protocol.decode_frame(
        json.dumps({"type": "res", "id": "2", "ok": False, "error": TOKEN_MISMATCH_V4})
    )
    assert error == Response("2", False, None, TOKEN_MISMATCH_V4)


def test_an_error_response_without_an_error_object_still_decodes_as_an_error() -> None:
    frame = protocol.decode_frame('{"type":"res","id":"2","ok":false}')
    assert isinstance(frame, Response) and not frame.ok and frame.error is not None


def test_decode_request() -> None:
    frame = protocol.decode_frame('{"type":"req","id":"1","method":"m","params":{"x":1}}')
    assert frame == Request("1", "m", {"x": 1})


@pytest.mark.parametrize(
    "data",
    [
        "not json",
        b'{"type":"event"}',
        "[]",
        "42",
        '{"type":"event"}',
        '{"type":"event","event":""}',
        '{"type":"event","event":"tick","seq":-1}',
        '{"type":"event","event":"tick","seq":1.5}',
        '{"type":"event","event":"tick","seq":true}',
        '{"type":"event","event":"tick","seq":9223372036854775808}',
        '{"type":"res","id":"1"}',
        '{"type":"res","ok":true}',
        '{"type":"nope"}',
        "[" * 100_000,
    ],
)
def test_malformed_frames_raise_protocol_error(data: str | bytes) -> None:
    with pytest.raises(ProtocolError):
        protocol.decode_frame(data)


def test_protocol_errors_quote_only_an_excerpt_of_a_huge_frame() -> None:
    with pytest.raises(ProtocolError) as caught:
        protocol.decode_frame("x" * 1_000_000)
    assert len(str(caught.value)) < 200


def test_parse_challenge_reads_nonce_ts_and_v4_capabilities() -> None:
    event = Event(
        "connect.challenge",
        {"nonce": "n-1", "ts": 1795509339003, "capabilities": ["model-catalog-snapshot"]},
    )
    assert protocol.parse_challenge(event) == Challenge(
        "n-1", 1795509339003, ("model-catalog-snapshot",)
    )


@pytest.mark.parametrize(
    "event",
    [
        Event("tick", {"nonce": "n", "ts": 1}),
        Event("connect.challenge", {"nonce": "n"}),
        Event("connect.challenge", {"nonce": "n", "ts": "1"}),
        Event("connect.challenge", {"nonce": "", "ts": 1}),
        Event("connect.challenge", None),
    ],
)
def test_parse_challenge_refuses_anything_else(event: Event) -> None:
    with pytest.raises(ProtocolError):
        protocol.parse_challenge(event)


def test_device_auth_payload_matches_the_documented_v3_format() -> None:
    payload = protocol.device_auth_payload(
        device_id="dev1",
        client_id="cli",
        client_mode="cli",
        role="operator",
        scopes=["operator.read", "operator.write"],
        signed_at=1737264000000,
        token="tok",
        nonce="n-1",
        platform="Linux",
    )
    assert (
        payload
        == "v3|dev1|cli|cli|operator|operator.read,operator.write|1737264000000|tok|n-1|linux|"
    )


def test_connect_params_for_a_monitor() -> None:
    params = protocol.connect_params(
        auth={"token": "tok"},
        challenge=Challenge("n-1", 1000),
        client_version="0.1.0",
        platform="linux",
    )
    assert params == {
        "minProtocol": 3,
        "maxProtocol": 4,
        "client": {"id": "cli", "version": "0.1.0", "platform": "linux", "mode": "cli"},
        "role": "operator",
        "scopes": ["operator.read"],
        "caps": [],
        "auth": {"token": "tok"},
    }


def _unb64url(text: str) -> bytes:
    assert "=" not in text
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@pytest.mark.parametrize(
    ("auth", "signed_token"),
    [({"token": "tok"}, "tok"), ({"deviceToken": "devtok"}, "devtok"), ({"password": "pw"}, "")],
)
def test_connect_params_sign_the_challenge_with_the_device_key(
    auth: dict[str, str], signed_token: str
) -> None:
    identity = DeviceIdentity.generate()
    scopes = ("operator.read", "operator.write")
    params = protocol.connect_params(
        auth=auth,
        challenge=Challenge("nonce-9", 1795509339003),
        client_version="0.1.0",
        scopes=scopes,
        device=identity,
        platform="linux",
    )
    device = params["device"]
    raw_key = _unb64url(device["publicKey"])
    assert device["id"] == hashlib.sha256(raw_key).hexdigest() == identity.device_id
    assert device["signedAt"] == 1795509339003 and device["nonce"] == "nonce-9"
    expected = (
        f"v3|{identity.device_id}|cli|cli|operator|operator.read,operator.write|"
        f"1795509339003|{signed_token}|nonce-9|linux|"
    )
    Ed25519PublicKey.from_public_bytes(raw_key).verify(
        _unb64url(device["signature"]), expected.encode()
    )


def test_parse_hello_reads_a_real_v4_hello() -> None:
    payload = {
        "type": "hello-ok",
        "protocol": 4,
        "server": {"version": "2026.9.6", "connId": "c-1", "buildId": "b"},
        "features": {"methods": ["health", "agents.list"], "events": ["tick"]},
        "snapshot": {"presence": [], "uptimeMs": 5},
        "auth": {"role": "operator", "scopes": ["operator.read"], "deviceToken": "dt-secret"},
        "policy": {"maxPayload": 26214400, "maxBufferedBytes": 52428800, "tickIntervalMs": 30000},
    }
    hello = protocol.parse_hello(payload)
    assert hello.protocol == 4
    assert hello.server_version == "2026.9.6"
    assert hello.scopes == ("operator.read",)
    assert hello.tick_interval_ms == 30000
    assert hello.methods == {"health", "agents.list"}
    assert hello.device_token is not None and hello.device_token.reveal() == "dt-secret"
    assert "dt-secret" not in repr(hello)


def test_parse_hello_defaults_a_missing_tick_interval() -> None:
    hello = protocol.parse_hello({"type": "hello-ok", "protocol": 3, "policy": {}})
    assert hello.tick_interval_ms == protocol.DEFAULT_TICK_INTERVAL_MS
    assert hello.scopes == () and hello.server_version is None


@pytest.mark.parametrize(
    "payload",
    [
        None,
        {"type": "hello"},
        {"type": "hello-ok"},
        {"type": "hello-ok", "protocol": 2},  # not what the client offered
        {"type": "hello-ok", "protocol": 2**40},
    ],
)
def test_parse_hello_refuses_a_non_hello(payload: object) -> None:
    with pytest.raises(ProtocolError):
        protocol.parse_hello(payload)


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (TOKEN_MISMATCH_V4, AuthError),
        (PROTOCOL_MISMATCH_V4, ProtocolMismatch),
        (
            {"code": "INVALID_REQUEST", "message": "x", "details": {"code": "AUTH_TOKEN_MISSING"}},
            AuthError,
        ),
        (
            {
                "code": "INVALID_REQUEST",
                "message": "x",
                "details": {"code": "DEVICE_AUTH_NONCE_MISMATCH"},
            },
            AuthError,
        ),
        (
            {
                "code": "NOT_PAIRED",
                "message": "pairing required",
                "details": {"code": "PAIRING_REQUIRED", "requestId": "r1"},
            },
            PairingRequired,
        ),
        (
            {
                "code": "INVALID_REQUEST",
                "message": "x",
                "retryAfterMs": 300000,
                "details": {"code": "AUTH_RATE_LIMITED"},
            },
            RateLimited,
        ),
        (
            {
                "code": "FORBIDDEN",
                "message": "missing scope: operator.read",
                "details": {"code": "MISSING_SCOPE", "missingScope": "operator.read"},
            },
            ScopeError,
        ),
        ({"code": "INVALID_REQUEST", "message": "missing scope: operator.read"}, ScopeError),
        (
            {"code": "INVALID_REQUEST", "message": "x", "details": {"code": "AUTH_SCOPE_MISMATCH"}},
            ScopeError,
        ),
        (
            {
                "code": "UNAVAILABLE",
                "message": "starting",
                "retryable": True,
                "retryAfterMs": 500,
                "details": {"reason": "startup-sidecars"},
            },
            GatewayUnavailable,
        ),
        ({"code": "INVALID_REQUEST", "message": "unexpected property 'offset'"}, InvalidRequest),
        ({"code": "SOMETHING_NEW", "message": "?"}, RpcError),
        ({}, RpcError),
    ],
)
def test_error_from_response_picks_the_class_by_code(error: dict, kind: type) -> None:
    built = protocol.error_from_response(error, method="connect")
    assert type(built) is kind
    assert built.method == "connect"


def test_error_from_response_keeps_the_details_users_need() -> None:
    mismatch = protocol.error_from_response(PROTOCOL_MISMATCH_V4)
    assert isinstance(mismatch, ProtocolMismatch) and mismatch.expected_protocol == 4
    unavailable = protocol.error_from_response(
        {"code": "UNAVAILABLE", "message": "s", "retryable": True, "retryAfterMs": 500}
    )
    assert unavailable.retry_after == 0.5 and unavailable.retryable is True
    pairing = protocol.error_from_response(
        {"code": "NOT_PAIRED", "message": "p", "details": {"requestId": "r1"}}, device_id="d1"
    )
    assert isinstance(pairing, PairingRequired)
    assert (pairing.request_id, pairing.device_id) == ("r1", "d1")
    assert "openclaw devices approve r1" in str(pairing)


@pytest.mark.parametrize("value", [-1, True, float("nan"), "5", None])
def test_error_from_response_ignores_a_bad_retry_after(value: object) -> None:
    assert (
        protocol.error_from_response({"code": "UNAVAILABLE", "retryAfterMs": value}).retry_after
        is None
    )
