"""One interface over the gateways the contract tests run against: demo or real."""

from __future__ import annotations

from typing import Any

from ocnb import GatewayClient
from ocnb.demo_gateway import DemoGateway
from support.driver import Driver
from support.realgateway import AGENTS, RealGateway


class Target:
    """A running gateway and what a test may do to it."""

    name: str
    protocol: int
    version: str
    url: str
    token: str

    def agent_ids(self) -> list[str]:
        raise NotImplementedError

    def agent_roles(self) -> tuple[str, str, str]:
        """Agents whose runs succeed fast, stream slowly, and fail (the demo's vary by seed)."""
        fast, slow, broken, *_ = self.agent_ids()
        return fast, slow, broken

    def ensure_sessions(self, count: int) -> None:
        """Make sure the gateway holds at least `count` sessions."""
        raise NotImplementedError

    def start_successful_run(self) -> tuple[str, str]:
        """Start a run that succeeds with tokens and cost; return (session key, run id)."""
        raise NotImplementedError

    def restart(self) -> None:
        """Stop the gateway (SIGTERM or its demo equivalent) and start it again."""
        raise NotImplementedError

    def driver(self) -> Driver:
        """A write- and admin-scoped connection that makes activity."""
        return Driver(self.url, self.token)

    def client(self, **options: Any) -> GatewayClient:
        options.setdefault("token", self.token)
        return GatewayClient(self.url, **options)

    def __repr__(self) -> str:
        return self.name


class DemoTarget(Target):
    def __init__(self, name: str, demo: DemoGateway) -> None:
        self.name, self.demo = name, demo
        self.protocol = demo.protocol
        self.version = "2026.9.6" if demo.protocol >= 4 else "2026.5.7"
        self.url, self.token = demo.url, demo.token

    def agent_ids(self) -> list[str]:
        return list(self.demo.world.agents)

    def ensure_sessions(self, count: int) -> None:
        assert len(self.demo.world.sessions) >= count

    def start_successful_run(self) -> tuple[str, str]:
        key = next(s.key for s in self.demo.world.sessions.values() if s.active_run_id is None)
        return key, self.demo.start_run(key, outcome="done")

    def restart(self) -> None:
        self.demo.restart(downtime=0.5)


class RealTarget(Target):
    def __init__(self, name: str, gateway: RealGateway) -> None:
        self.name, self.gateway = name, gateway
        self.protocol, self.version = gateway.protocol, gateway.version
        self.url, self.token = gateway.url, gateway.token
        self._runs = 0

    def agent_ids(self) -> list[str]:
        return [agent_id for agent_id, *_ in AGENTS]

    def ensure_sessions(self, count: int) -> None:
        with self.driver() as driver:
            existing = _count_sessions(driver)
            for n in range(existing, count):
                agent_id = AGENTS[n % len(AGENTS)][0]
                driver.create_session(agent_id, f"agent:{agent_id}:bulk-{n}")

    def start_successful_run(self) -> tuple[str, str]:
        self._runs += 1
        key = f"agent:{AGENTS[0][0]}:contract-{self._runs}"
        with self.driver() as driver:
            return key, driver.run(key)

    def driver(self) -> Driver:
        return self.gateway.driver()

    def restart(self) -> None:
        self.gateway.stop()
        self.gateway.start()
        self.gateway.wait_ready()


def _count_sessions(driver: Driver) -> int:
    total: int = driver.call("sessions.list", {"limit": 1})["totalCount"]
    return total
