"""Credentials: gateway URL and shared secret, the device identity, and issued device tokens.

Secrets are held in `ocnb.secret.Secret`; `Credentials.redact` scrubs them out of any text
that came from elsewhere before it reaches a log or an exception.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import platformdirs
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ocnb.secret import Secret

DEFAULT_URL = "ws://127.0.0.1:18789/"
URL_VARIABLES = ("OPENCLAW_GATEWAY_URL", "GATEWAY_WS_URL")
TOKEN_VARIABLE = "OPENCLAW_GATEWAY_TOKEN"  # noqa: S105 - a variable name, not a secret
PASSWORD_VARIABLE = "OPENCLAW_GATEWAY_PASSWORD"  # noqa: S105
HOME_VARIABLE = "OCNB_HOME"


def _secret(value: str | Secret | None) -> Secret | None:
    if value is None or value == "":
        return None
    return value if isinstance(value, Secret) else Secret(value)


def resolve_url(url: str | None = None, env: Mapping[str, str] = os.environ) -> str:
    """The gateway URL: the argument, else `OPENCLAW_GATEWAY_URL`, else `GATEWAY_WS_URL`,
    else the local default `ws://127.0.0.1:18789/`."""
    return locate_url(url, env)[0]


def locate_url(url: str | None = None, env: Mapping[str, str] = os.environ) -> tuple[str, str]:
    """`resolve_url`'s answer and where it came from: `argument`, `$OPENCLAW_GATEWAY_URL`,
    `$GATEWAY_WS_URL` or `default`."""
    if url:
        return _check_url(url), "argument"
    for name in URL_VARIABLES:
        if candidate := env.get(name):
            return _check_url(candidate), f"${name}"
    return DEFAULT_URL, "default"


def _check_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("ws", "wss") or not parts.hostname:
        raise ValueError(f"a gateway URL looks like ws://host:18789/ or wss://host/, not {url!r}")
    if parts.username or parts.password:
        raise ValueError("put credentials in token= or password=, not in the gateway URL")
    return url


def gateway_key(url: str) -> str:
    """A stable name for a gateway, used to file its device token (`ws://host:port/path`)."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "wss" else 80)
    host = (parts.hostname or "").lower()
    return f"{parts.scheme}://{host}:{port}{parts.path.rstrip('/') or '/'}"


@dataclass(frozen=True)
class Credentials:
    """Where the gateway is and the shared secret to show it. Never prints a secret."""

    url: str
    token: Secret | None = None
    password: Secret | None = None
    url_source: str = "argument"  # or `$OPENCLAW_GATEWAY_URL`, `$GATEWAY_WS_URL`, `default`

    @classmethod
    def resolve(
        cls,
        url: str | None = None,
        token: str | Secret | None = None,
        password: str | Secret | None = None,
        env: Mapping[str, str] = os.environ,
    ) -> Credentials:
        """Fill what the caller left out from the environment (see the module's variables)."""
        located, source = locate_url(url, env)
        return cls(
            url=located,
            token=_secret(token) or _secret(env.get(TOKEN_VARIABLE)),
            password=_secret(password) or _secret(env.get(PASSWORD_VARIABLE)),
            url_source=source,
        )

    def where(self) -> str:
        """The URL and where it came from, for messages: `ws://… (from $OPENCLAW_GATEWAY_URL)`."""
        if self.url_source == "default":
            return f"{self.url} (the default: {URL_VARIABLES[0]} is not set)"
        if self.url_source == "argument":
            return f"{self.url} (the url you passed)"
        return f"{self.url} (from {self.url_source})"

    def connect_auth(self, device_token: Secret | None = None) -> dict[str, str]:
        """The `auth` object of `connect`: the shared token, else a stored device token."""
        auth: dict[str, str] = {}
        if self.token is not None:
            auth["token"] = self.token.reveal()
        elif device_token is not None:
            auth["deviceToken"] = device_token.reveal()
        if self.password is not None:
            auth["password"] = self.password.reveal()
        return auth

    def redact(self, text: str, *extra: Secret | None) -> str:
        """`text` with every known secret replaced by a mask."""
        for secret in (self.token, self.password, *extra):
            if secret is not None:
                text = text.replace(secret.reveal(), "********")
        return text


def ocnb_home(env: Mapping[str, str] = os.environ) -> Path:
    """The directory for ocnb's private files: `$OCNB_HOME`, else the user config dir."""
    override = env.get(HOME_VARIABLE)
    return Path(override) if override else platformdirs.user_config_path("ocnb")


def write_private_file(path: Path, data: str) -> None:
    """Write `data` to `path` atomically, readable by the owner only (0600)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(data)
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Bytes from base64url without padding (how device keys and signatures travel)."""
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class DeviceIdentity:
    """A persistent ed25519 key; its id (SHA-256 of the public key) is the pairing identity."""

    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        self._key = private_key
        raw = private_key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        self._public_key = _b64url(raw)
        self._device_id = hashlib.sha256(raw).hexdigest()

    @classmethod
    def generate(cls) -> DeviceIdentity:
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def load_or_create(cls, path: Path | None = None) -> DeviceIdentity:
        """Load the key at `path` (default `<ocnb home>/device-key.pem`), creating it once."""
        path = path or ocnb_home() / "device-key.pem"
        try:
            pem = path.read_bytes()
        except FileNotFoundError:
            identity = cls.generate()
            write_private_file(path, identity._private_pem())
            return identity
        try:
            key = serialization.load_pem_private_key(pem, password=None)
        except ValueError:
            key = None
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError(
                f"{path} does not hold an ed25519 device key; move it away to start over"
            )
        return cls(key)

    def _private_pem(self) -> str:
        return self._key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode("ascii")

    @property
    def device_id(self) -> str:
        """The device's id: the hex SHA-256 of its public key, as the gateway derives it."""
        return self._device_id

    @property
    def public_key(self) -> str:
        """The raw public key, base64url without padding."""
        return self._public_key

    def sign(self, message: str) -> str:
        """Sign `message` (UTF-8); the signature as base64url without padding."""
        return _b64url(self._key.sign(message.encode("utf-8")))

    def __repr__(self) -> str:
        return f"DeviceIdentity(device_id={self._device_id[:12]}…)"

    def __reduce__(self) -> Any:
        raise TypeError("a DeviceIdentity cannot be pickled")


class DeviceTokenStore:
    """The device tokens gateways issued, filed per gateway, device and role (file mode 0600)."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or ocnb_home() / "device-tokens.json"

    def __repr__(self) -> str:
        return f"DeviceTokenStore({str(self.path)!r})"

    def get(self, url: str, device_id: str, role: str) -> Secret | None:
        """The token the gateway issued for (`url`, `device_id`, `role`), or None."""
        entry = self._read().get(self._key(url, device_id, role))
        token = entry.get("token") if isinstance(entry, dict) else None
        return _secret(token) if isinstance(token, str) else None

    def put(
        self, url: str, device_id: str, role: str, token: Secret, scopes: tuple[str, ...]
    ) -> None:
        """Keep the token the gateway issued for (`url`, `device_id`, `role`) and its scopes."""
        entries = self._read()
        key = self._key(url, device_id, role)
        old = entries.get(key)
        if isinstance(old, dict) and old.get("token") == token.reveal():
            return  # same token: keep the (possibly wider) scopes it was issued with
        entries[key] = {"token": token.reveal(), "scopes": list(scopes)}
        self._write(entries)

    def forget(self, url: str, device_id: str, role: str) -> None:
        """Drop the token the gateway issued for (`url`, `device_id`, `role`), if any."""
        entries = self._read()
        if entries.pop(self._key(url, device_id, role), None) is not None:
            self._write(entries)

    @staticmethod
    def _key(url: str, device_id: str, role: str) -> str:
        return f"{gateway_key(url)}|{device_id}|{role}"

    def _read(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise ValueError(f"cannot read device tokens from {self.path}: {exc}") from None
        return data if isinstance(data, dict) else {}

    def _write(self, entries: dict[str, Any]) -> None:
        write_private_file(self.path, json.dumps(entries, indent=2, sort_keys=True))


class MemoryDeviceTokens(DeviceTokenStore):
    """Device tokens kept by this process only, for gateways that end with it (the embedded
    demo's): nothing of theirs is left in the device-token file."""

    def __init__(self) -> None:
        self._entries: dict[str, Any] = {}

    def __repr__(self) -> str:
        return "MemoryDeviceTokens()"

    def _read(self) -> dict[str, Any]:
        return dict(self._entries)

    def _write(self, entries: dict[str, Any]) -> None:
        self._entries = entries
