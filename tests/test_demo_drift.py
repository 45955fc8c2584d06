"""The demo gateway's frames have the same keys as a real gateway's, kind by kind."""

from __future__ import annotations

import pytest
from support.driver import Driver
from support.realgateway import AGENTS, V3_VERSION, V4_VERSION, RealGateway
from support.recording import FIXTURES, REQUIRED_KINDS, Shape, compare, load, record_scenario

from ocnb.demo_gateway import DemoGateway

PROTOCOL_OF = {V4_VERSION: 4, V3_VERSION: 3}


def record_demo(protocol: int) -> dict[str, Shape]:
    with DemoGateway(seed=3, protocol=protocol, speed=10, run_rate=0.5) as gateway:
        fast, slow, broken, *_ = gateway.world.agents
        driver = Driver(gateway.url, gateway.token)
        recorder = record_scenario(
            gateway.url, gateway.token, (fast, slow, broken), driver, until=REQUIRED_KINDS
        )
    return recorder.shapes


@pytest.mark.parametrize("version", [V4_VERSION, V3_VERSION])
def test_demo_frames_match_the_recorded_real_gateway(version: str) -> None:
    real = load(FIXTURES / f"real-shapes-{version}.json")
    demo = record_demo(PROTOCOL_OF[version])
    assert [kind for kind in REQUIRED_KINDS if kind not in real] == []
    assert [kind for kind in REQUIRED_KINDS if kind not in demo] == []
    assert compare(real, demo) == {}


@pytest.mark.gateway
@pytest.mark.parametrize("version", [V4_VERSION, V3_VERSION])
def test_demo_frames_match_a_fresh_recording_of_the_real_gateway(
    version: str, real_gateways: dict[str, RealGateway]
) -> None:
    gateway = real_gateways[version]
    fast, slow, broken = (agent_id for agent_id, *_ in AGENTS)
    real = record_scenario(
        gateway.url, gateway.token, (fast, slow, broken), gateway.driver()
    ).shapes
    demo = record_demo(PROTOCOL_OF[version])
    assert [kind for kind in REQUIRED_KINDS if kind not in real] == []
    assert compare(real, demo) == {}
