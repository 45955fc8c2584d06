"""The embedded demo gateway: a seeded, protocol-faithful OpenClaw fleet on loopback."""

from ocnb.demo.gateway import DemoGateway

__all__ = ["DemoGateway"]
