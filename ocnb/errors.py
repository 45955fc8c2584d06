"""The errors ocnb raises, in a small hierarchy users can catch by meaning.

```
OcnbError
├── RpcError                 the gateway answered a request with ok=false
│   ├── AuthError            wrong or missing credentials
│   ├── ScopeError           the connection lacks a scope the method needs
│   ├── RateLimited          too many attempts; wait `retry_after` seconds
│   ├── PairingRequired      this device waits for an admin's approval
│   ├── ProtocolMismatch     no protocol version both sides speak
│   ├── GatewayUnavailable   starting or busy; retry after `retry_after`
│   └── InvalidRequest       the gateway refused the request's shape
├── RequestTimeout           no answer within the timeout
├── ConnectionLost           the socket closed while waiting
├── GatewayUnreachable       nothing answers at the URL (refused, or no such host)
├── CertificateError         a wss:// gateway's certificate did not verify
├── ProtocolError            the gateway sent something unparseable
├── ClientClosed             the client was closed by its user
└── InvalidTime              a moment ocnb cannot read, or one before the store's history
```
"""

from __future__ import annotations

from typing import Any


class OcnbError(Exception):
    """Base class of every error ocnb raises on purpose."""


class RpcError(OcnbError):
    """The gateway answered a request with an error.

    `code` is the top-level error code (`INVALID_REQUEST`, `FORBIDDEN`, ...);
    `detail_code` is `details.code` when present. Branch on these, never on `message`.
    """

    def __init__(
        self,
        code: str,
        message: str,
        details: dict[str, Any] | None = None,
        *,
        method: str | None = None,
        retryable: bool | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.code = code
        self.message = message
        self.details = details or {}
        self.method = method
        self.retryable = retryable
        self.retry_after = retry_after
        super().__init__(self._describe())

    @property
    def detail_code(self) -> str | None:
        value = self.details.get("code")
        return value if isinstance(value, str) else None

    def _describe(self) -> str:
        where = f"{self.method}: " if self.method else ""
        codes = self.code + (f"/{self.detail_code}" if self.detail_code else "")
        return f"{where}{codes}: {self.message}"


class AuthError(RpcError):
    """The gateway rejected the credentials; retrying with the same ones cannot help."""


class ScopeError(RpcError):
    """The connection lacks a scope the method needs (`missing_scope`)."""

    @property
    def missing_scope(self) -> str | None:
        value = self.details.get("missingScope")
        return value if isinstance(value, str) else None


class RateLimited(RpcError):
    """Too many failed attempts; the gateway asks to wait `retry_after` seconds."""


class PairingRequired(RpcError):
    """This device is not paired yet: an admin must approve `request_id`."""

    def __init__(self, *args: Any, device_id: str | None = None, **kwargs: Any) -> None:
        self.device_id = device_id
        super().__init__(*args, **kwargs)

    @property
    def request_id(self) -> str | None:
        value = self.details.get("requestId")
        return value if isinstance(value, str) else None

    def _describe(self) -> str:
        return (
            f"device {self.device_id or '?'} is waiting for pairing approval "
            f"(requestId: {self.request_id or '?'}); an admin can run "
            f"`openclaw devices approve {self.request_id or '<requestId>'}`"
        )


class ProtocolMismatch(RpcError):
    """The gateway speaks no protocol version in the range ocnb offered."""

    @property
    def expected_protocol(self) -> int | None:
        value = self.details.get("expectedProtocol")
        return value if isinstance(value, int) else None


class GatewayUnavailable(RpcError):
    """The gateway is starting up or busy; try again after `retry_after` seconds."""


class InvalidRequest(RpcError):
    """The gateway refused the request's shape (unknown method, bad or unexpected params)."""


class RequestTimeout(OcnbError, TimeoutError):
    """A request got no answer within its timeout."""


class ConnectionLost(OcnbError, ConnectionError):
    """The connection to the gateway closed before an answer arrived."""

    def __init__(self, message: str, *, code: int | None = None, reason: str = "") -> None:
        self.code = code
        self.reason = reason
        super().__init__(message)


class GatewayUnreachable(OcnbError, ConnectionError):
    """Nothing answers at the gateway's URL: the connection is refused at once, or the host
    name does not resolve. Raised by a first connect that waits; a client keeps retrying."""


class CertificateError(OcnbError):
    """The gateway's TLS certificate did not verify. Pass `ssl=` a context that trusts its CA
    (`ssl.create_default_context(cafile=...)`), or an unverified one to opt out explicitly."""


class ProtocolError(OcnbError):
    """The gateway sent a frame ocnb cannot make sense of."""


class ClientClosed(OcnbError):
    """The client was closed; it makes no more requests."""


class InvalidTime(OcnbError, ValueError):
    """A moment that does not parse, or one before anything the store holds."""


def describe(exc: BaseException) -> str:
    """An error in one line, as the `last_error` of a background part shows it: type and text."""
    return f"{type(exc).__name__}: {exc}"
