"""The `--dev` gateway of OpenClaw 2026.9.6, as the README's real-gateway steps start it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from support.realgateway import V4_VERSION, RealGateway

from ocnb import GatewayClient

pytestmark = pytest.mark.gateway


@pytest.fixture(scope="module")
def dev_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealGateway]:
    gateway = RealGateway(V4_VERSION, tmp_path_factory.mktemp("openclaw-dev"))
    gateway.start()
    try:
        gateway.wait_ready()
        yield gateway
    finally:
        gateway.stop()


def test_connects_reports_protocol_4_and_lists_the_dev_agent(dev_gateway: RealGateway) -> None:
    with GatewayClient(dev_gateway.url, dev_gateway.token) as client:
        client.wait_until_live(60)
        assert client.protocol == 4
        assert client.server_version == V4_VERSION
        agents = client.call("agents.list")
        assert [agent["id"] for agent in agents["agents"]] == ["dev"]
        assert agents["defaultId"] == "dev"
