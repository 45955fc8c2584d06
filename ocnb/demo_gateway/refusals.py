"""Error answers the demo gateway gives, worded and coded as real gateways word them."""

from __future__ import annotations

from typing import Any


class Refusal(Exception):
    """Answer a request with `ok: false` and this error object."""

    def __init__(self, code: str, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.error: dict[str, Any] = {"code": code, "message": message}
        if details:
            self.error["details"] = details


def invalid_params(method: str, problem: str) -> Refusal:
    return Refusal("INVALID_REQUEST", f"invalid {method} params: {problem}")


def missing_scope(scope: str, protocol: int) -> Refusal:
    if protocol < 4:
        return Refusal("INVALID_REQUEST", f"missing scope: {scope}")
    details = {"code": "MISSING_SCOPE", "missingScope": scope, "requiredScopes": [scope]}
    return Refusal("FORBIDDEN", f"missing scope: {scope}", details)


def closed(method: str, params: dict[str, Any], allowed: tuple[str, ...]) -> None:
    """Parameter objects are closed: refuse any key not in `allowed`."""
    for key in params:
        if key not in allowed:
            raise invalid_params(method, f"at root: unexpected property '{key}'")


def integer(method: str, params: dict[str, Any], key: str, *, minimum: int, default: int) -> int:
    value = params.get(key, default)
    if type(value) is not int:
        raise invalid_params(method, f"at /{key}: must be integer")
    if value < minimum:
        raise invalid_params(method, f"at /{key}: must be >= {minimum}")
    return value


def as_object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}
