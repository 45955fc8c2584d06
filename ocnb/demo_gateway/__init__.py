"""The embedded demo gateway: a seeded, protocol-faithful OpenClaw fleet on loopback.

`DemoGateway` is the gateway itself, for tests and scripts that bring their own client;
`ocnb.demo(**options)` starts one and returns a live `Fleet` on it.
"""

from ocnb.demo_gateway.gateway import DemoGateway

__all__ = ["DemoGateway"]
