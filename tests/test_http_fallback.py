"""HTTP polling stands in while a proxy blocks the WebSocket path, and gives way when it clears."""

from __future__ import annotations

import httpx
import pytest
from support.blockproxy import BlockingProxy
from support.convergence import differences
from support.helpers import fetch_all_sessions, wait_for
from support.realgateway import V4_VERSION, RealGateway

import ocnb
from ocnb import Fleet
from ocnb.auth import Credentials
from ocnb.demo_gateway import DemoGateway
from ocnb.link import allows_fallback
from ocnb.poll import HttpPoller, http_base

# poll often, and retry the WebSocket within seconds (not the default 30 s) once unblocked
FAST = {"poll_interval": 0.3, "agent": "alpha", "backoff": ocnb.Backoff(maximum=2.0)}


def polled_sessions_agree(fleet: Fleet, client: ocnb.GatewayClient) -> bool:
    """The store's session keys and statuses are the gateway's (printed when they are not)."""
    theirs = {row["key"]: row.get("status") for row in fetch_all_sessions(client)}
    frame = fleet.sessions()
    statuses = [status if isinstance(status, str) else None for status in frame["status"]]
    ours = dict(zip(frame["session_key"], statuses, strict=True))
    if ours != theirs:
        print("store:", sorted(ours.items()), "\ngateway:", sorted(theirs.items()))
    return ours == theirs


@pytest.mark.gateway
def test_blocked_websocket_polls_http_then_switches_back(
    real_gateways: dict[str, RealGateway],
) -> None:
    gateway = real_gateways[V4_VERSION]
    with (
        BlockingProxy(gateway.port) as proxy,
        gateway.driver() as driver,
        ocnb.connect(
            proxy.url, gateway.token, name="gw", poll_interval=0.5, agent="alpha"
        ) as fleet,
    ):
        assert fleet.status == "polling (HTTP)" and proxy.refused >= 2
        truth = driver.client  # a direct connection: the gateway's own view
        driver.run("agent:alpha:poll-ok")
        driver.create_session("bravo", "agent:bravo:poll-new")
        wait_for(lambda: polled_sessions_agree(fleet, truth), 60, "polled sessions to converge")
        driver.delete_session("agent:bravo:poll-new")
        wait_for(lambda: polled_sessions_agree(fleet, truth), 60, "the deletion to be seen")
        polled = set(
            fleet.sql("SELECT session_key FROM events WHERE event = 'poll'")["session_key"]
        )
        assert "agent:alpha:poll-ok" in polled

        proxy.blocking = False
        client = fleet.clients["gw"]
        wait_for(lambda: fleet.status == "live", 90, "the WebSocket to come back")
        wait_for(lambda: not differences(fleet, client, "gw"), 60, "the re-sync to converge")


@pytest.mark.gateway
def test_wrong_token_over_http_is_terminal_and_never_shown(
    real_gateways: dict[str, RealGateway],
) -> None:
    gateway = real_gateways[V4_VERSION]
    with pytest.raises(ocnb.AuthError) as caught:
        ocnb.connect(gateway.url, "not-the-token", transport="http", agent="alpha", timeout=30)
    assert "not-the-token" not in str(caught.value) + repr(caught.value)


def test_the_demo_falls_back_to_its_http_side_and_returns() -> None:
    demo = DemoGateway(seed=3, run_rate=0, speed=5, http=True)  # the activity is ours
    with (
        demo,
        BlockingProxy(demo.port) as proxy,
        ocnb.GatewayClient(demo.url, demo.token) as truth,
        ocnb.connect(proxy.url, demo.token, name="demo", **{**FAST, "agent": "atlas"}) as fleet,
    ):
        truth.wait_until_live(30)  # straight to the demo, through its front
        assert fleet.status == "polling (HTTP)"
        run_id = demo.start_run(next(iter(demo.world.sessions)), outcome="done")
        assert run_id
        wait_for(lambda: polled_sessions_agree(fleet, truth), 30, "polled sessions to converge")
        assert "polling (HTTP)" in repr(fleet) and fleet.agents()["status"].ne("offline").all()
        proxy.blocking = False
        wait_for(lambda: fleet.status == "live", 60, "the WebSocket to come back")
        wait_for(lambda: not differences(fleet, fleet.clients["demo"], "demo"), 30)
        assert fleet.sql("SELECT count(*) AS n FROM events WHERE event = 'poll'")["n"].iloc[0] > 0


def test_http_only_transport_mirrors_the_demo() -> None:
    with DemoGateway(seed=5, run_rate=0, churn=False, http=True) as demo:
        with ocnb.connect(demo.url, demo.token, transport="http", agent="atlas") as fleet:
            assert fleet.status == "polling (HTTP)"
            assert set(fleet.sessions()["session_key"]) == set(demo.world.sessions)
            assert "atlas" in set(fleet.agents()["agent_id"])
        with pytest.raises(ocnb.InvalidRequest, match="Pass agentId"):
            ocnb.connect(demo.url, demo.token, transport="http", timeout=10)


def test_fallback_is_on_by_default_only_where_the_secret_stays_off_the_wire() -> None:
    assert allows_fallback("ws://127.0.0.1:18789/") and allows_fallback("ws://localhost:1/")
    assert allows_fallback("wss://gateway.example.com/")
    assert not allows_fallback("ws://10.0.0.5:18789/")
    assert http_base("wss://gateway.example.com:8443/ws") == "https://gateway.example.com:8443"


@pytest.mark.parametrize(
    ("status", "headers", "error", "retry_after"),
    [
        (401, {}, ocnb.AuthError, None),
        (429, {"Retry-After": "7"}, ocnb.RateLimited, 7.0),
        (503, {}, ocnb.GatewayUnavailable, None),
        (400, {}, ocnb.InvalidRequest, None),
    ],
)
def test_http_errors_are_typed_and_carry_retry_after(
    status: int, headers: dict[str, str], error: type[ocnb.RpcError], retry_after: float | None
) -> None:
    seen: list[httpx.Request] = []

    def gateway(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        body = {"error": {"type": "x", "message": "no"}}
        return httpx.Response(status, headers=headers, json=body)

    credentials = Credentials.resolve("ws://127.0.0.1:1/", "s3cret-token")
    poller = HttpPoller(credentials, transport=httpx.MockTransport(gateway))
    with pytest.raises(error) as caught:
        poller.poll_once()
    assert caught.value.retry_after == retry_after
    assert "s3cret-token" not in str(caught.value)
    assert seen[0].headers["Authorization"] == "Bearer s3cret-token"
    assert "s3cret-token" not in str(seen[0].url) + seen[0].content.decode()
