"""The real v4 and v3 gateways mirrored into one store at once, one of them restarted."""

from __future__ import annotations

import pytest
from support.convergence import converged, wait_runs_finished
from support.helpers import wait_for
from support.realgateway import AGENTS, V3_VERSION, V4_VERSION, RealGateway

import ocnb

pytestmark = [pytest.mark.gateway, pytest.mark.timeout(420)]

FAST = AGENTS[0][0]


def test_two_real_gateways_share_one_store_and_stay_apart(
    real_gateways: dict[str, RealGateway],
) -> None:
    gateways = {"v4": real_gateways[V4_VERSION], "v3": real_gateways[V3_VERSION]}
    with ocnb.connect(gateways["v4"].url, gateways["v4"].token, name="v4") as fleet:
        fleet.add_gateway(gateways["v3"].url, gateways["v3"].token, name="v3")
        fleet.wait_until_live(60)
        for name, gateway in gateways.items():
            with gateway.driver() as driver:
                run_id = driver.run(f"agent:{FAST}:both-{name}")
            wait_runs_finished(fleet, fleet.clients[name], [run_id])

        gateways["v3"].stop()
        gateways["v3"].start()
        gateways["v3"].wait_ready()
        client = fleet.clients["v3"]
        wait_for(lambda: client.stats.reconnects >= 1 and client.status == "live", 120)
        with gateways["v3"].driver() as driver:
            after = driver.run(f"agent:{FAST}:both-v3-after")
        wait_runs_finished(fleet, client, [after])

        for name in gateways:
            converged(fleet, fleet.clients[name], name)
        cards = fleet.agents()
        assert sorted(cards["gateway"]) == sorted(["v3", "v4"] * len(AGENTS))  # same ids, apart
        placed = fleet.sql(
            "SELECT gateway, session_key FROM sessions WHERE session_key LIKE $like",
            like=f"agent:{FAST}:both-%",
        )
        assert sorted(map(tuple, placed.to_numpy())) == [
            ("v3", f"agent:{FAST}:both-v3"),
            ("v3", f"agent:{FAST}:both-v3-after"),
            ("v4", f"agent:{FAST}:both-v4"),
        ]
        runs = fleet.runs()
        assert set(runs["gateway"]) == {"v3", "v4"}
        assert fleet.statuses == {"v4": "live", "v3": "live"}
