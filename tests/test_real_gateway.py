"""GatewayClient against real OpenClaw gateways (installed by scripts/install-openclaw)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import wait_for
from realgateway import V3_VERSION, V4_VERSION, RealGateway

from ocnb import AuthError, GatewayClient

pytestmark = pytest.mark.gateway


@pytest.fixture(scope="module", params=[V4_VERSION, V3_VERSION])
def real_gateway(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RealGateway]:
    gateway = RealGateway(request.param, tmp_path_factory.mktemp(f"openclaw-{request.param}"))
    gateway.start()
    try:
        gateway.wait_ready()
        yield gateway
    finally:
        gateway.stop()


def test_connects_and_reads_the_dev_agent(real_gateway: RealGateway) -> None:
    with GatewayClient(real_gateway.url, real_gateway.token) as client:
        client.wait_until_live(60)
        assert client.protocol == real_gateway.protocol
        assert client.server_version == real_gateway.version
        # v3 grants scopes on loopback only to a signed device identity: this proves ours.
        assert "operator.read" in client.granted_scopes
        agents = client.call("agents.list")
        assert [agent["id"] for agent in agents["agents"]] == ["dev"]
        assert agents["defaultId"] == "dev"


def test_the_issued_device_token_is_filed_and_reused_without_the_shared_token(
    real_gateway: RealGateway, private_environment: Path
) -> None:
    with GatewayClient(real_gateway.url, real_gateway.token) as client:
        client.wait_until_live(60)
        assert client.hello is not None
        assert client.hello.device_token is not None
        device_id = client.device_id
    token_file = private_environment / "device-tokens.json"
    assert device_id is not None
    assert device_id in token_file.read_text()
    assert real_gateway.token not in token_file.read_text()
    with GatewayClient(real_gateway.url) as again:  # no shared token: the device token only
        again.wait_until_live(60)
        assert again.device_id == device_id
        assert "operator.read" in again.granted_scopes
        assert again.call("agents.list")["defaultId"] == "dev"


def test_a_wrong_token_fails_once_with_auth_error(real_gateway: RealGateway) -> None:
    with GatewayClient(real_gateway.url, "not-the-token") as client:
        with pytest.raises(AuthError) as caught:
            client.wait_until_live(60)
        assert caught.value.detail_code == "AUTH_TOKEN_MISMATCH"
        supervisor = client._supervisor
        assert supervisor is not None
        wait_for(supervisor.done, what="the client to give up")
        assert client.stats.connects == 0
        assert "not-the-token" not in str(caught.value)
