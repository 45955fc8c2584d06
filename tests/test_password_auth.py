"""Password auth (`gateway.auth.mode: password`) against the real gateways of both protocols."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.realgateway import V3_VERSION, V4_VERSION, RealGateway

import ocnb
from ocnb import AuthError
from ocnb.auth import PASSWORD_VARIABLE

pytestmark = [pytest.mark.gateway, pytest.mark.timeout(300)]


@pytest.fixture(scope="module", params=[V4_VERSION, V3_VERSION])
def gateway(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RealGateway]:
    home = tmp_path_factory.mktemp("openclaw")
    with RealGateway(request.param, home, password=True) as gateway:
        yield gateway


def test_a_password_from_the_environment_connects(
    gateway: RealGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(PASSWORD_VARIABLE, gateway.token)
    with ocnb.connect(gateway.url, name="gw") as fleet:
        client = fleet.clients["gw"]
        assert client.protocol == gateway.protocol
        assert "operator.read" in client.granted_scopes
        assert len(fleet.agents()) >= 1


def test_a_wrong_password_fails_at_once_with_an_auth_error(
    gateway: RealGateway, private_environment: Path
) -> None:
    """A fresh device (this test's own OCNB_HOME): one paired before would be let in anyway.
    One attempt, no retry storm: loopback answers each failure more slowly, remote addresses
    are locked out after ten."""
    started = time.monotonic()
    with ocnb.connect(gateway.url, password="not-the-password", name="gw", wait=False) as fleet:
        client = fleet.clients["gw"]
        with pytest.raises(AuthError) as caught:
            fleet.wait_until_live(60)
        assert time.monotonic() - started < 15
        assert client.status == "failed" and client.stats.attempts == 1
    assert "not-the-password" not in str(caught.value)
    assert caught.value.detail_code is not None and caught.value.detail_code.startswith("AUTH_")
