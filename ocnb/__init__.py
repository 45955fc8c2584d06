"""ocnb: a Jupyter-native toolkit for fleets of OpenClaw agents."""

import logging

from ocnb import demo
from ocnb.auth import Credentials, DeviceIdentity, DeviceTokenStore, MemoryDeviceTokens
from ocnb.client import Backoff, ClientStats, GatewayClient
from ocnb.errors import (
    AuthError,
    CertificateError,
    ClientClosed,
    ConnectionLost,
    GatewayUnavailable,
    GatewayUnreachable,
    InvalidRequest,
    OcnbError,
    PairingRequired,
    ProtocolError,
    ProtocolMismatch,
    RateLimited,
    RequestTimeout,
    RpcError,
    ScopeError,
)
from ocnb.fleet import Fleet, connect
from ocnb.secret import Secret
from ocnb.store import FleetStore

__version__ = "0.1.0"

__all__ = [
    "AuthError",
    "Backoff",
    "CertificateError",
    "ClientClosed",
    "ClientStats",
    "ConnectionLost",
    "Credentials",
    "DeviceIdentity",
    "DeviceTokenStore",
    "Fleet",
    "FleetStore",
    "GatewayClient",
    "GatewayUnavailable",
    "GatewayUnreachable",
    "InvalidRequest",
    "MemoryDeviceTokens",
    "OcnbError",
    "PairingRequired",
    "ProtocolError",
    "ProtocolMismatch",
    "RateLimited",
    "RequestTimeout",
    "RpcError",
    "ScopeError",
    "Secret",
    "__version__",
    "connect",
    "demo",
]

logging.getLogger(__name__).addHandler(logging.NullHandler())
