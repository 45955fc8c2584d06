"""The demo gateway's frames have the same keys as a real gateway's, kind by kind."""

from __future__ import annotations

import pytest
from realgateway import V3_VERSION, V4_VERSION
from recording import FIXTURES, REQUIRED_KINDS, Shape, compare, load, record_scenario

from ocnb.demo import DemoGateway

PROTOCOL_OF = {V4_VERSION: 4, V3_VERSION: 3}


def record_demo(protocol: int) -> dict[str, Shape]:
    with DemoGateway(seed=3, protocol=protocol, speed=10, run_rate=0.5) as gateway:
        agents = tuple(list(gateway.world.agents)[:3])
        recorder = record_scenario(gateway.url, gateway.token, agents, until=REQUIRED_KINDS)  # type: ignore[arg-type]
    return recorder.shapes


@pytest.mark.parametrize("version", [V4_VERSION, V3_VERSION])
def test_demo_frames_match_the_recorded_real_gateway(version: str) -> None:
    real = load(FIXTURES / f"real-shapes-{version}.json")
    demo = record_demo(PROTOCOL_OF[version])
    assert [kind for kind in REQUIRED_KINDS if kind not in real] == []
    assert [kind for kind in REQUIRED_KINDS if kind not in demo] == []
    assert compare(real, demo) == {}
