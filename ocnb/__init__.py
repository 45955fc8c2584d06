"""ocnb: a Jupyter-native toolkit for fleets of OpenClaw agents."""

import logging

from ocnb.auth import Credentials, DeviceIdentity, DeviceTokenStore, MemoryDeviceTokens
from ocnb.client import Backoff, ClientStats, GatewayClient
from ocnb.demo_gateway import DemoGateway
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
from ocnb.fleet import Fleet, connect, demo
from ocnb.secret import Secret
from ocnb.store import FleetStore
from ocnb.version import __version__

__all__ = [
    "AuthError",
    "Backoff",
    "CertificateError",
    "ClientClosed",
    "ClientStats",
    "ConnectionLost",
    "Credentials",
    "DemoGateway",
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
