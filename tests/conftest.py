"""Shared fixtures: a private OCNB_HOME and a clean environment for every test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from support.fakemodel import FakeModelServer
from support.realgateway import V3_VERSION, V4_VERSION, RealGateway
from support.targets import DemoTarget, RealTarget, Target

from ocnb.auth import HOME_VARIABLE, PASSWORD_VARIABLE, TOKEN_VARIABLE, URL_VARIABLES
from ocnb.demo_gateway import DemoGateway


@pytest.fixture(autouse=True)
def private_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own ocnb home and no gateway settings from the outer shell."""
    home = tmp_path / "ocnb-home"
    monkeypatch.setenv(HOME_VARIABLE, str(home))
    for name in (*URL_VARIABLES, TOKEN_VARIABLE, PASSWORD_VARIABLE):
        monkeypatch.delenv(name, raising=False)
    return home


@pytest.fixture(scope="session")
def fake_models() -> Iterator[FakeModelServer]:
    with FakeModelServer() as server:
        yield server


@pytest.fixture(scope="session")
def real_gateways(
    fake_models: FakeModelServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, RealGateway]]:
    """Both real gateways, started together once per test session, on the fake models."""
    gateways = {
        version: RealGateway(
            version, tmp_path_factory.mktemp(f"openclaw-{version}"), model_url=fake_models.base_url
        )
        for version in (V4_VERSION, V3_VERSION)
    }
    try:
        for gateway in gateways.values():
            gateway.start()
        for gateway in gateways.values():
            gateway.wait_ready()
        yield gateways
    finally:
        for gateway in gateways.values():
            gateway.stop()


@pytest.fixture(
    scope="session",
    params=[
        "demo-v4",
        "demo-v3",
        pytest.param(f"openclaw-{V4_VERSION}", marks=pytest.mark.gateway),
        pytest.param(f"openclaw-{V3_VERSION}", marks=pytest.mark.gateway),
    ],
)
def target(request: pytest.FixtureRequest) -> Iterator[Target]:
    """Each gateway the client must work against: the demo in both protocols and both reals."""
    name: str = request.param
    if name.startswith("demo-"):
        with DemoGateway(
            seed=7, protocol=int(name[-1]), sessions=150, run_rate=0, churn=False
        ) as demo:
            yield DemoTarget(name, demo)
    else:
        gateways = request.getfixturevalue("real_gateways")
        yield RealTarget(name, gateways[name.removeprefix("openclaw-")])
