"""Pairing required, end to end: a real gateway reached from a non-loopback address refuses a
new device with a request id, its own command line approves it, and the client goes live."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from support.helpers import wait_for
from support.realgateway import V4_VERSION, RealGateway

import ocnb
from ocnb import PairingRequired

pytestmark = [pytest.mark.gateway, pytest.mark.timeout(300)]


def own_address() -> str:
    """This machine's address on its default route (no packet is sent)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect(("192.0.2.1", 9))  # TEST-NET-1: only the route is looked up
        address: str = probe.getsockname()[0]
    if address.startswith("127."):
        pytest.fail("no address but loopback: a remote connection cannot be made here")
    return address


@pytest.fixture(scope="module")
def lan_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealGateway]:
    with RealGateway(V4_VERSION, tmp_path_factory.mktemp("openclaw"), bind="lan") as gateway:
        yield gateway


def test_a_new_remote_device_is_paired_with_the_gateways_own_cli(lan_gateway: RealGateway) -> None:
    url = f"ws://{own_address()}:{lan_gateway.port}/"
    backoff = ocnb.Backoff(pairing_retry=1.0)
    with ocnb.connect(url, lan_gateway.token, name="remote", wait=False, backoff=backoff) as fleet:
        client = fleet.clients["remote"]
        wait_for(lambda: isinstance(client.last_error, PairingRequired), 60, "pairing required")
        refusal = client.last_error
        assert isinstance(refusal, PairingRequired) and refusal.request_id
        assert f"openclaw devices approve {refusal.request_id}" in str(refusal)
        assert client.device_id is not None and client.device_id in str(refusal)
        assert lan_gateway.token not in str(refusal)

        approved = lan_gateway.cli("devices", "approve", refusal.request_id)
        assert approved.returncode == 0, approved.stderr[-2000:]
        fleet.wait_until_live(60)
        assert "operator.read" in client.granted_scopes
        assert client.hello is not None and client.hello.device_token is not None
        assert len(fleet.agents()) >= 1
