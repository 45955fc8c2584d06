"""The demo gateway: its world, its protocol enforcement, its RPCs and its fault injection."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest
from support.helpers import wait_for
from websockets.asyncio.client import connect

from ocnb import (
    Backoff,
    DeviceIdentity,
    GatewayClient,
    InvalidRequest,
    RpcError,
    ScopeError,
    protocol,
)
from ocnb.demo_gateway import DemoGateway
from ocnb.demo_gateway.world import World

FAST = Backoff(initial=0.02, maximum=0.2, jitter=0, healthy_after=60)


@pytest.fixture
def demo() -> Iterator[DemoGateway]:
    with DemoGateway(seed=5, run_rate=0, churn=False) as gateway:
        yield gateway


def client_for(gateway: DemoGateway, **options: Any) -> GatewayClient:
    options.setdefault("backoff", FAST)
    return GatewayClient(gateway.url, gateway.token, **options)


# --- the world ---------------------------------------------------------------------------------


def test_the_same_seed_plays_the_same_scenario() -> None:
    def play(seed: int) -> list[tuple[str, str]]:
        world = World(seed=seed, agents=6, sessions=40, start_ms=1_700_000_000_000, run_rate=0.3)
        happenings = world.advance(60_000)
        return [
            (h.kind, getattr(h.data.get("run") or h.data.get("session"), "key", ""))
            for h in happenings
        ]

    first, again, other = play(11), play(11), play(12)
    assert first == again
    assert first != other
    assert {"run.started", "run.end"} <= {kind for kind, _ in first}


def test_the_world_has_the_asked_for_size_and_past_activity() -> None:
    world = World(seed=0, agents=500, sessions=10_000, start_ms=1_700_000_000_000)
    assert len(world.agents) == 500
    assert len(world.sessions) == 10_000
    assert len({s.key for s in world.sessions.values()}) == 10_000
    statuses = {s.status for s in world.sessions.values()}
    assert {"done", "failed", "killed"} <= statuses
    assert all(s.lifetime_cost >= 0 for s in world.sessions.values())


# --- the handshake -----------------------------------------------------------------------------


async def _raw_connect(
    url: str, params: dict[str, Any] | None, first: dict[str, Any] | None = None
) -> tuple[dict[str, Any], int | None]:
    """Send one frame after the challenge; return the answer and the close code."""
    async with connect(url) as ws:
        challenge = json.loads(await ws.recv())
        assert challenge["event"] == "connect.challenge"
        frame = first or {"type": "req", "id": "1", "method": "connect", "params": params}
        await ws.send(json.dumps(frame))
        answer = json.loads(await ws.recv())
        await ws.wait_closed()
        return answer, ws.close_code


def _params(token: str, **changes: Any) -> dict[str, Any]:
    params: dict[str, Any] = {
        "minProtocol": 3,
        "maxProtocol": 4,
        "client": {"id": "cli", "version": "1", "platform": "linux", "mode": "cli"},
        "role": "operator",
        "scopes": ["operator.read"],
        "caps": [],
        "auth": {"token": token},
    }
    params.update(changes)
    return params


@pytest.mark.parametrize(
    ("changes", "message", "close"),
    [
        ({"bogus": 1}, "unexpected property 'bogus'", 1008),
        (
            {"client": {"id": "fleet-monitor", "version": "1", "platform": "linux", "mode": "cli"}},
            "/client/id",
            1008,
        ),
        (
            {"client": {"id": "cli", "version": "1", "platform": "linux", "mode": "operator"}},
            "/client/mode",
            1008,
        ),
        ({"minProtocol": 5, "maxProtocol": 5}, "protocol mismatch", 1002),
        ({"auth": {"token": "wrong"}}, "token mismatch", 1008),
    ],
)
def test_connect_is_checked_like_a_real_gateway(
    demo: DemoGateway, changes: dict[str, Any], message: str, close: int
) -> None:
    answer, code = asyncio.run(_raw_connect(demo.url, _params(demo.token, **changes)))
    assert answer["ok"] is False
    assert message in answer["error"]["message"]
    assert code == close


def test_the_first_request_must_be_connect(demo: DemoGateway) -> None:
    first = {"type": "req", "id": "1", "method": "health", "params": {}}
    answer, code = asyncio.run(_raw_connect(demo.url, None, first))
    assert answer["error"]["message"] == "invalid handshake: first request must be connect"
    assert code == 1008


def test_a_huge_frame_before_connect_closes_1009(demo: DemoGateway) -> None:
    async def send_huge() -> int | None:
        async with connect(demo.url, max_size=None) as ws:
            await ws.recv()
            await ws.send("x" * 70_000)
            await ws.wait_closed()
            return ws.close_code

    assert asyncio.run(send_huge()) == 1009


def test_v3_clears_the_scopes_of_a_connection_without_device() -> None:
    with DemoGateway(protocol=3, run_rate=0) as gateway:
        with client_for(gateway, device=False, subscribe_sessions=False) as client:
            client.wait_until_live(10)
            assert client.granted_scopes == ()
            with pytest.raises(ScopeError):
                client.call("agents.list")
        with client_for(gateway) as signed:
            signed.wait_until_live(10)
            assert signed.granted_scopes == ("operator.read",)


def test_a_bad_device_signature_is_refused(demo: DemoGateway) -> None:
    identity = DeviceIdentity.generate()

    async def attempt() -> dict[str, Any]:
        async with connect(demo.url) as ws:
            challenge = protocol.parse_challenge(protocol.decode_frame(await ws.recv()))  # type: ignore[arg-type]
            params = protocol.connect_params(
                auth={"token": demo.token}, challenge=challenge, client_version="1", device=identity
            )
            params["device"]["signature"] = identity.sign("something else")
            await ws.send(protocol.encode_request("1", "connect", params))
            answer: dict[str, Any] = json.loads(await ws.recv())
            return answer

    answer = asyncio.run(attempt())
    assert answer["error"]["details"]["code"] == "DEVICE_AUTH_SIGNATURE_INVALID"


# --- RPCs ----------------------------------------------------------------------------------------


def test_sessions_list_pages_filters_and_checks_params(demo: DemoGateway) -> None:
    with client_for(demo) as client:
        client.wait_until_live(10)
        first = client.call("sessions.list", {"limit": 25})
        assert (first["count"], first["totalCount"], first["nextOffset"]) == (25, 60, 25)
        rest = client.call("sessions.list", {"limit": 100, "offset": 25})
        assert rest["nextOffset"] is None and rest["hasMore"] is False
        keys = [row["key"] for row in first["sessions"] + rest["sessions"]]
        assert sorted(keys) == sorted(demo.world.sessions)
        agent = next(iter(demo.world.agents))
        mine = client.call("sessions.list", {"agentId": agent, "limit": 500})["sessions"]
        assert mine and all(row["agentId"] == agent for row in mine)
        with pytest.raises(InvalidRequest, match="unexpected property 'bogus'"):
            client.call("sessions.list", {"bogus": 1})
        with pytest.raises(InvalidRequest, match="must be >= 1"):
            client.call("sessions.list", {"limit": 0})
        with pytest.raises(ScopeError):  # unknown methods need admin, as on real gateways
            client.call("no.such.method")


def test_v3_refuses_offset() -> None:
    with DemoGateway(protocol=3, run_rate=0) as gateway, client_for(gateway) as client:
        client.wait_until_live(10)
        with pytest.raises(InvalidRequest, match="unexpected property 'offset'"):
            client.call("sessions.list", {"offset": 0})
        assert client.call("sessions.list", {"limit": 1000})["count"] == 60


def test_write_methods_need_write_scope(demo: DemoGateway) -> None:
    with client_for(demo) as client:
        client.wait_until_live(10)
        with pytest.raises(ScopeError):
            client.call(
                "chat.send",
                {"sessionKey": "agent:atlas:main", "message": "hi", "idempotencyKey": "k"},
            )


# --- fault injection --------------------------------------------------------------------------


def test_silence_trips_the_clients_tick_watchdog() -> None:
    with DemoGateway(run_rate=0, tick_interval=0.1) as gateway, client_for(gateway) as client:
        client.wait_until_live(10)
        gateway.go_silent(0.5)
        wait_for(lambda: client.stats.watchdog_closes >= 1 and client.status == "live", 10)


def test_a_skipped_seq_makes_the_client_resync() -> None:
    syncs: list[int] = []

    async def on_sync(client: GatewayClient) -> None:
        syncs.append(1)

    # ticks make the events; the demo's 100 ms scenario step cannot keep a shorter interval
    gateway = DemoGateway(run_rate=0, tick_interval=0.3)
    with gateway, client_for(gateway, on_sync=on_sync) as client:
        client.wait_until_live(10)
        wait_for(lambda: client.stats.events >= 2)
        gateway.skip_seq(3)
        wait_for(lambda: client.stats.seq_gaps == 1 and len(syncs) == 2 and client.status == "live")


def test_malformed_frames_are_counted_and_the_client_stays_live(demo: DemoGateway) -> None:
    with client_for(demo) as client:
        client.wait_until_live(10)
        demo.send_malformed()
        wait_for(lambda: client.stats.bad_frames + client.stats.unknown_responses == 6)
        assert client.status == "live"
        assert client.call("agents.list")["agents"]


def test_startup_sidecars_refusals_are_waited_out(demo: DemoGateway) -> None:
    demo.refuse_while_starting(2)
    with client_for(demo, backoff=Backoff(initial=30)) as client:
        client.wait_until_live(10)
        assert demo.connections_accepted == 3


def test_dropped_connections_reconnect(demo: DemoGateway) -> None:
    with client_for(demo) as client:
        client.wait_until_live(10)
        demo.drop_connections()
        wait_for(lambda: client.stats.reconnects == 1 and client.status == "live")


def test_a_demo_run_can_be_started_on_demand(demo: DemoGateway) -> None:
    seen: list[dict[str, Any]] = []
    client = client_for(demo)
    client.on("sessions.changed", lambda e: seen.append(e.payload))
    with client:
        client.wait_until_live(10)
        key = next(iter(demo.world.sessions))
        run_id = demo.start_run(key, outcome="failed")
        wait_for(
            lambda: any(p.get("phase") == "error" and p.get("runId") == run_id for p in seen), 30
        )
        error_row = next(p for p in seen if p.get("phase") == "error")["session"]
        assert error_row["status"] == "failed"
        assert error_row["lastRunError"]


def test_unknown_method_errors_are_rpc_errors(demo: DemoGateway) -> None:
    with client_for(demo, scopes=("operator.read", "operator.admin")) as client:
        client.wait_until_live(10)
        with pytest.raises(RpcError, match="unknown method"):
            client.call("no.such.method")


def test_firehose_mode_streams_without_pause() -> None:
    with DemoGateway(firehose=True, churn=False) as gateway, client_for(gateway) as client:
        client.wait_until_live(10)
        wait_for(lambda: client.stats.events >= 20_000, 60, "a firehose of events")
        assert client.stats.bad_frames == 0
        assert client.stats.seq_gaps == 0


def test_a_flood_delivers_every_event_in_sequence() -> None:
    gateway = DemoGateway(run_rate=0, churn=False, paused=True)
    with gateway, client_for(gateway) as client:
        client.wait_until_live(10)
        before = client.stats.events
        kinds: set[str] = set()
        client.on_any(lambda event: kinds.add(event.event))
        gateway.flood(3_000, variety=1_000)
        wait_for(lambda: client.stats.events >= before + 3_000)
        assert client.stats.seq_gaps == 0 and client.stats.bad_frames == 0
        assert {"agent", "chat", "sessions.changed", "session.message"} <= kinds
