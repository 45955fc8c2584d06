"""A newcomer's wrong first steps, each answered in seconds with what to do instead."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pandas as pd
import pytest

import ocnb
from ocnb import analysis
from ocnb.auth import URL_VARIABLES
from ocnb.demo_gateway import DemoGateway
from ocnb.errors import GatewayUnreachable, InvalidTime


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A loopback port nothing listens on (held bound, never listening, so none takes it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


def test_connect_with_no_url_and_no_gateway_says_so_within_seconds(
    closed_port: int, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("ocnb.auth.DEFAULT_URL", f"ws://127.0.0.1:{closed_port}/")
    started = time.monotonic()
    with pytest.raises(GatewayUnreachable) as caught:
        ocnb.connect()
    assert time.monotonic() - started < 10
    message = str(caught.value)
    assert f"ws://127.0.0.1:{closed_port}/" in message
    assert f"the default: {URL_VARIABLES[0]} is not set" in message
    assert "refused" in message and "ocnb.demo()" in message
    assert "connecting, attempt 2" in capsys.readouterr().err  # the wait showed its progress


def test_a_url_from_the_environment_is_named_as_such(
    closed_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(URL_VARIABLES[0], f"ws://127.0.0.1:{closed_port}/")
    with pytest.raises(GatewayUnreachable, match=rf"from \${URL_VARIABLES[0]}"):
        ocnb.connect(timeout=30)


def test_a_host_that_does_not_resolve_is_unreachable() -> None:
    with pytest.raises(GatewayUnreachable, match=r"does not resolve.*check the host name"):
        ocnb.connect("ws://no-such-gateway.invalid:18789/", timeout=30)


def test_a_client_that_does_not_wait_keeps_trying(closed_port: int) -> None:
    """Only a caller that waits is told: the client itself retries (a gateway may start later)."""
    url = f"ws://127.0.0.1:{closed_port}/"
    with ocnb.connect(url, wait=False, backoff=ocnb.Backoff(initial=0.05, maximum=0.1)) as fleet:
        client = next(iter(fleet.clients.values()))
        with pytest.raises(GatewayUnreachable, match="the url you passed"):
            client.wait_until_live(30)
        assert client.status == "connecting"


def test_wait_takes_seconds_or_a_bool_and_refuses_anything_else() -> None:
    with ocnb.demo(seed=3, agents=2, sessions=3, run_rate=0) as fleet:
        url, token = fleet.clients["demo"].url, fleet.demo_gateway.token  # type: ignore[union-attr]
        with ocnb.connect(url, token, wait=5) as other:
            assert other.status == "live"
        for wrong in ("5", 0, -1, None):
            with pytest.raises(TypeError, match="wait= takes True, False or a number"):
                ocnb.connect(url, token, wait=wrong)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def quiet_fleet() -> Iterator[ocnb.Fleet]:
    with ocnb.demo(seed=3, agents=3, sessions=6, run_rate=0, history=False) as fleet:
        yield fleet


def test_a_moment_that_does_not_parse_lists_the_accepted_forms(quiet_fleet: ocnb.Fleet) -> None:
    with pytest.raises(InvalidTime, match=r"cannot read 'yesterday-ish'.*ISO 8601.*'2h ago'"):
        analysis.fleet_at(quiet_fleet, "yesterday-ish")
    with pytest.raises(ValueError, match="last tuesday"):  # InvalidTime is a ValueError too
        quiet_fleet.events(since="last tuesday")


def test_a_moment_before_the_stores_history_says_so(quiet_fleet: ocnb.Fleet) -> None:
    with pytest.raises(InvalidTime, match=r"holds nothing at 2020-01-01.*history starts at"):
        analysis.fleet_at(quiet_fleet, "2020-01-01")


def test_a_duration_ago_is_a_moment(quiet_fleet: ocnb.Fleet) -> None:
    moment = analysis.as_utc("90min ago")
    assert abs(pd.Timestamp.now("UTC") - pd.Timedelta("90min") - moment) < pd.Timedelta("1min")
    with analysis.fleet_at(quiet_fleet, "0s ago") as past:
        assert len(past.agents()) == 3


def test_a_filter_on_an_unknown_agent_warns_with_the_known_ids(quiet_fleet: ocnb.Fleet) -> None:
    known = ", ".join(sorted(quiet_fleet.agents()["agent_id"]))
    with pytest.warns(UserWarning, match=rf"no agent 'atals' in this fleet \(known: {known}\)"):
        assert quiet_fleet.sessions(agent="atals").empty
    with pytest.warns(UserWarning, match="no agent 'atals'"):
        analysis.runs(quiet_fleet, agent="atals")


def test_a_v3_gateway_of_40000_sessions_syncs_whole() -> None:
    """v3 answers `sessions.list` in one frame (~0.9 KB a row), far over its own maxPayload."""
    gateway = DemoGateway(protocol=3, sessions=40_000, run_rate=0, churn=False)
    with gateway, ocnb.connect(gateway.url, gateway.token, name="big", timeout=90) as fleet:
        client = fleet.clients["big"]
        assert client.hello is not None and client.hello.max_payload is not None
        listed = fleet.sql(
            "SELECT strlen(payload) AS bytes FROM sync_log WHERE kind = 'sessions.list'"
        )
        assert listed["bytes"].max() > client.hello.max_payload
        assert len(fleet.sessions()) == 40_000
        assert fleet.sql("SELECT count(*) AS n FROM session_usage")["n"][0] == 40_000
        assert client.stats.bad_frames == 0


def test_the_demos_history_takes_a_duration_or_a_bool() -> None:
    with pytest.raises(ValueError, match="history= takes True, False or a duration"):
        ocnb.demo(history="soon")
    with pytest.raises(ValueError, match="needs wait=True"):
        ocnb.demo(history="5min", wait=False)
