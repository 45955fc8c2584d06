"""Who may connect: the `connect` checks of a real gateway (params, protocol, token, device)."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from ocnb import protocol
from ocnb.auth import b64url_decode
from ocnb.demo_gateway.refusals import Refusal, as_object, invalid_params
from ocnb.secret import Secret

CLIENT_IDS = frozenset(
    {
        "cli", "gateway-client", "openclaw-control-ui", "webchat", "openclaw-tui", "test",
        "probe", "openclaw-linux", "openclaw-macos", "openclaw-ios", "openclaw-android",
    }
)  # fmt: skip
CLIENT_MODES = frozenset({"cli", "backend", "ui", "webchat", "node", "probe", "test"})
CONNECT_KEYS = frozenset(
    {
        "minProtocol", "maxProtocol", "client", "role", "scopes", "caps", "commands",
        "permissions", "auth", "locale", "userAgent", "device", "pathEnv",
    }
)  # fmt: skip
SIGNATURE_SKEW_MS = 120_000


@dataclass(frozen=True)
class Admitted:
    """A connection let in: its scopes, and the device token issued to it if any."""

    scopes: tuple[str, ...]
    device_token: str | None


class Admission:
    """Checks `connect` params against one gateway's protocol and token; issues device tokens."""

    def __init__(self, protocol: int, token: Secret) -> None:
        self.protocol = protocol
        self._token = token
        self._device_tokens: dict[str, str] = {}

    def admit(self, params: Any, nonce: str, ts: int) -> Admitted:
        """Let a connection in or raise the `Refusal` a real gateway would answer with."""
        if not isinstance(params, dict):
            raise invalid_params("connect", "at root: must be object")
        for key in params:
            if key not in CONNECT_KEYS:
                raise invalid_params("connect", f"at root: unexpected property '{key}'")
        low, high = params.get("minProtocol"), params.get("maxProtocol")
        if not (isinstance(low, int) and isinstance(high, int) and low <= self.protocol <= high):
            details = {
                "code": "PROTOCOL_MISMATCH",
                "clientMinProtocol": low,
                "clientMaxProtocol": high,
                "expectedProtocol": self.protocol,
                "minimumProbeProtocol": 3,
            }
            raise Refusal("INVALID_REQUEST", "protocol mismatch", details)
        client = as_object(params.get("client"))
        for field, allowed in (("id", CLIENT_IDS), ("mode", CLIENT_MODES)):
            if client.get(field) not in allowed:
                problem = f"at /client/{field}: must be equal to one of the allowed values"
                raise invalid_params("connect", problem)
        auth = as_object(params.get("auth"))
        device = params.get("device")
        device_id = self._check_device(params, device, auth, nonce, ts) if device else None
        self._check_token(auth, device_id)
        requested = params.get("scopes")
        requested = (
            [s for s in requested if isinstance(s, str)] if isinstance(requested, list) else []
        )
        # Without a device identity scopes are cleared, except for two loopback trust paths.
        trusted = (client["id"], client["mode"]) == ("gateway-client", "backend") or (
            self.protocol >= 4 and (client["id"], client["mode"]) == ("cli", "cli")
        )
        granted = tuple(requested) if device_id or trusted else ()
        device_token = None
        if device_id is not None:
            device_token = self._device_tokens.setdefault(device_id, secrets.token_urlsafe(24))
        return Admitted(granted, device_token)

    def _check_token(self, auth: dict[str, Any], device_id: str | None) -> None:
        token, device_token = auth.get("token"), auth.get("deviceToken")
        if token is None and device_token is not None and device_id is not None:
            if self._device_tokens.get(device_id) == device_token:
                return
            details = {"code": "AUTH_DEVICE_TOKEN_MISMATCH"}
            raise Refusal("INVALID_REQUEST", "unauthorized: device token mismatch", details)
        if token is None:
            if device_id is None:
                details = {"code": "DEVICE_IDENTITY_REQUIRED"}
                raise Refusal("NOT_PAIRED", "device identity required", details)
            details = {
                "code": "AUTH_TOKEN_MISSING",
                "recommendedNextStep": "update_auth_configuration",
            }
            raise Refusal("INVALID_REQUEST", "unauthorized: gateway token missing", details)
        if not secrets.compare_digest(str(token), self._token.reveal()):
            mismatch: dict[str, Any] = {
                "code": "AUTH_TOKEN_MISMATCH",
                "authReason": "token_mismatch",
                "canRetryWithDeviceToken": False,
                "recommendedNextStep": "update_auth_credentials",
            }
            message = (
                "unauthorized: gateway token mismatch "
                "(use this gateway's gateway.auth.token or pair the device)"
            )
            raise Refusal("INVALID_REQUEST", message, mismatch)

    def _check_device(
        self, params: dict[str, Any], device: Any, auth: dict[str, Any], nonce: str, ts: int
    ) -> str:
        """Verify the device block's ed25519 signature over the v3 payload; return its id."""

        def refuse(message: str, code: str) -> Refusal:
            return Refusal("INVALID_REQUEST", message, {"code": code})

        try:
            public = b64url_decode(device["publicKey"])
            device_id = hashlib.sha256(public).hexdigest()
            if device.get("id") != device_id:
                raise refuse("device identity mismatch", "DEVICE_AUTH_DEVICE_ID_MISMATCH")
            if device.get("nonce") != nonce:
                raise refuse("device nonce mismatch", "DEVICE_AUTH_NONCE_MISMATCH")
            if abs(int(device.get("signedAt", 0)) - ts) > SIGNATURE_SKEW_MS:
                raise refuse("device signature expired", "DEVICE_AUTH_SIGNATURE_EXPIRED")
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
            signature = b64url_decode(device["signature"])
            Ed25519PublicKey.from_public_bytes(public).verify(signature, message.encode())
        except Refusal:
            raise
        except (InvalidSignature, KeyError, ValueError, TypeError) as exc:
            raise refuse("device signature invalid", "DEVICE_AUTH_SIGNATURE_INVALID") from exc
        return device_id
