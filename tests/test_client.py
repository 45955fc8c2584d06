"""GatewayClient against a scripted loopback gateway: handshake, routing, failures, reconnects."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import logging
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from support.fakegateway import FakeGateway, Peer, Reject
from support.helpers import wait_for

from ocnb import (
    AuthError,
    Backoff,
    CertificateError,
    ClientClosed,
    ConnectionLost,
    GatewayClient,
    InvalidRequest,
    PairingRequired,
    ProtocolMismatch,
    RequestTimeout,
    ScopeError,
)
from ocnb.protocol import Event

FAST = Backoff(initial=0.02, maximum=0.2, jitter=0.0, healthy_after=60, pairing_retry=0.05)


@pytest.fixture
def gateway() -> Iterator[FakeGateway]:
    with FakeGateway() as fake:
        yield fake


def make_client(gateway: FakeGateway, **options: Any) -> GatewayClient:
    options.setdefault("backoff", FAST)
    options.setdefault("token", gateway.token)
    return GatewayClient(gateway.url, **options)


def call_in_background(
    client: GatewayClient, gateway: FakeGateway, method: str
) -> tuple[threading.Thread, list[BaseException]]:
    """Start `client.call(method)` on a thread; return once the gateway has the request."""
    errors: list[BaseException] = []

    def call() -> None:
        try:
            client.call(method, timeout=60)
        except Exception as exc:
            errors.append(exc)

    caller = threading.Thread(target=call)
    caller.start()
    wait_for(lambda: any(r["method"] == method for r in gateway.peers[0].requests))
    return caller, errors


@pytest.mark.parametrize("version", [3, 4])
def test_handshake_negotiates_the_gateway_protocol(version: int) -> None:
    with FakeGateway(protocol=version) as gateway, make_client(gateway) as client:
        client.wait_until_live(10)
        assert client.protocol == version
        assert client.server_version == gateway.version
        assert client.granted_scopes == ("operator.read",)
        params = gateway.peers[0].connect_params
        assert params is not None
        assert (params["minProtocol"], params["maxProtocol"]) == (3, 4)
        assert params["client"]["id"] == params["client"]["mode"] == "cli"
        assert params["role"] == "operator"
        # The fake verified the ed25519 signature over the v3 payload, or it would have refused.
        assert params["device"]["id"] == client.device_id


def test_every_connect_subscribes_to_sessions(gateway: FakeGateway) -> None:
    with make_client(gateway) as client:
        client.wait_until_live(10)
        assert [r["method"] for r in gateway.peers[0].requests] == ["sessions.subscribe"]


def test_call_returns_the_payload(gateway: FakeGateway) -> None:
    with make_client(gateway) as client:
        client.wait_until_live(10)
        assert client.call("agents.list")["agents"] == [{"id": "main"}]
        assert client.stats.rpc_calls == 2  # sessions.subscribe + agents.list


def test_responses_out_of_order_reach_their_callers(gateway: FakeGateway) -> None:
    gateway.answer("slow", "slow answer", delay=0.5)
    gateway.answer("fast", "fast answer")
    with make_client(gateway) as client:
        client.wait_until_live(10)
        results: dict[str, Any] = {}
        slow = threading.Thread(target=lambda: results.update(slow=client.call("slow")))
        slow.start()
        wait_for(lambda: any(r["method"] == "slow" for r in gateway.peers[0].requests))
        assert client.call("fast") == "fast answer"
        assert "slow" not in results  # the fast answer overtook the slow one
        slow.join(5)
        assert results == {"slow": "slow answer"}


def test_a_call_without_an_answer_times_out_and_the_client_stays_usable(
    gateway: FakeGateway,
) -> None:
    gateway.answer("never", delay=3600)
    with make_client(gateway) as client:
        client.wait_until_live(10)
        with pytest.raises(RequestTimeout, match="never"):
            client.call("never", timeout=0.2)
        assert client.call("agents.list")["defaultId"] == "main"
        assert client.status == "live"


def test_error_answers_raise_typed_errors(gateway: FakeGateway) -> None:
    with make_client(gateway) as client:
        client.wait_until_live(10)
        with pytest.raises(InvalidRequest) as caught:
            client.call("no.such.method")
        assert caught.value.code == "INVALID_REQUEST"
        assert caught.value.method == "no.such.method"


def test_pending_calls_fail_with_connection_lost_when_the_socket_drops(
    gateway: FakeGateway,
) -> None:
    gateway.answer("never", delay=3600)
    with make_client(gateway, backoff=Backoff(initial=30)) as client:
        client.wait_until_live(10)
        caller, errors = call_in_background(client, gateway, "never")
        gateway.drop(1011, "boom")
        caller.join(5)
        assert not caller.is_alive()
        assert isinstance(errors[0], ConnectionLost)
        assert errors[0].code == 1011


def test_reconnects_after_a_drop_with_growing_backoff(gateway: FakeGateway) -> None:
    backoff = Backoff(initial=0.05, maximum=1, factor=2, jitter=0, healthy_after=60)
    with make_client(gateway, backoff=backoff) as client:
        client.wait_until_live(10)
        gateway.accept = False
        gateway.drop(1011)
        wait_for(lambda: len(gateway.attempts) >= 5, what="four refused reconnects")
        gateway.accept = True
        wait_for(lambda: client.stats.reconnects == 1 and client.status == "live")
    gaps = [b - a for a, b in zip(gateway.attempts[1:], gateway.attempts[2:], strict=False)]
    # asyncio.sleep never wakes early, so each gap is at least its backoff delay.
    assert all(gap >= 0.05 * 2**i for i, gap in enumerate(gaps[:3]))


def test_an_outage_warns_once_and_logs_its_repeats_at_debug_level(
    gateway: FakeGateway, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="ocnb.client")
    with make_client(gateway) as client:
        for outage in (1, 2):
            client.wait_until_live(10)
            before = client.stats.attempts
            gateway.accept = False
            gateway.drop(1011)
            # the 4th attempt begins only after the 3rd failed and was logged
            wait_for(lambda n=before: client.stats.attempts >= n + 4, what="refused reconnects")
            gateway.accept = True
            wait_for(lambda n=outage: client.stats.reconnects == n and client.status == "live")
    failures = [r for r in caplog.records if "connection failed" in r.getMessage()]
    levels = [r.levelno for r in failures]
    assert levels.count(logging.WARNING) == 2 and levels.count(logging.DEBUG) >= 4


def test_backoff_doubles_to_its_maximum_with_bounded_jitter() -> None:
    import random

    backoff = Backoff(initial=1, maximum=30, jitter=0.2)
    rng = random.Random(7)
    delays = [backoff.delay(attempt, rng) for attempt in range(8)]
    for attempt, delay in enumerate(delays):
        base = min(30, 2**attempt)
        assert base * 0.8 <= delay <= min(30, base * 1.2)
    assert delays[-1] <= 30


def test_tick_watchdog_closes_a_silent_connection_with_4000_and_reconnects() -> None:
    with FakeGateway(tick_interval_ms=100) as gateway, make_client(gateway) as client:
        client.wait_until_live(10)
        wait_for(lambda: client.stats.reconnects >= 1, what="a reconnect after silence")
        assert gateway.peers[0].close_code == 4000
        assert client.stats.watchdog_closes >= 1


def test_ticks_keep_the_watchdog_quiet() -> None:
    async def tick_forever(peer: Peer) -> None:
        while peer.close_code is None:
            await FakeGateway.send_event(peer, "tick", {"ts": 0})
            await asyncio.sleep(0.03)

    with FakeGateway(tick_interval_ms=100) as gateway, make_client(gateway) as client:
        gateway.on_hello = tick_forever
        client.wait_until_live(10)
        wait_for(lambda: client.stats.events >= 30, what="a second of ticks")
        assert client.stats.watchdog_closes == 0
        assert client.stats.reconnects == 0


def test_shutdown_and_1012_reconnect_after_restart_expected_ms(gateway: FakeGateway) -> None:
    # A 30 s backoff would stall the test: only restartExpectedMs lets it reconnect promptly.
    with make_client(gateway, backoff=Backoff(initial=30, jitter=0)) as client:
        client.wait_until_live(10)
        gateway.emit("shutdown", {"reason": "restart", "restartExpectedMs": 50})
        gateway.drop(1012, "service restart")
        wait_for(lambda: client.stats.reconnects == 1 and client.status == "live", timeout=10)


def test_a_seq_gap_triggers_a_resync(gateway: FakeGateway) -> None:
    syncs: list[int] = []

    async def on_sync(client: GatewayClient) -> None:
        syncs.append(len(syncs))

    with make_client(gateway, on_sync=on_sync) as client:
        client.wait_until_live(10)
        gateway.emit("health", {}, seq=1)
        gateway.emit("health", {}, seq=2)
        gateway.emit("health", {}, seq=5)
        wait_for(lambda: len(syncs) == 2 and client.status == "live", what="a second sync")
        assert client.stats.seq_gaps == 1
        assert client.stats.resyncs == 1


def test_a_repeated_seq_is_dropped_and_counted(gateway: FakeGateway) -> None:
    seen: list[int | None] = []
    with make_client(gateway) as client:
        client.on("health", lambda e: seen.append(e.seq))
        client.wait_until_live(10)
        for seq in (1, 2, 2, 3):
            gateway.emit("health", {}, seq=seq)
        wait_for(lambda: seen == [1, 2, 3])
        assert client.stats.bad_frames == 1


def test_a_wrong_token_fails_once_with_auth_error_and_never_retries(
    gateway: FakeGateway,
) -> None:
    with make_client(gateway, token="wrong-token-456") as client:
        with pytest.raises(AuthError) as caught:
            client.wait_until_live(10)
        assert caught.value.detail_code == "AUTH_TOKEN_MISMATCH"
        assert client.status == "failed"
        assert client.last_error is caught.value
        # Once the supervisor has returned, no further attempt can happen.
        supervisor = client._supervisor
        assert supervisor is not None
        wait_for(supervisor.done, what="the supervisor to give up")
        assert len(gateway.attempts) == 1
        with pytest.raises(AuthError):
            client.call("agents.list", timeout=1)


def test_a_protocol_mismatch_is_terminal() -> None:
    with FakeGateway(protocol=5) as gateway, make_client(gateway) as client:
        with pytest.raises(ProtocolMismatch) as caught:
            client.wait_until_live(10)
        assert caught.value.expected_protocol == 5
        assert len(gateway.attempts) == 1


def test_startup_sidecars_unavailable_is_retried_after_retry_after_ms(
    gateway: FakeGateway,
) -> None:
    refusals = iter(range(2))

    def still_starting(params: dict[str, Any]) -> dict[str, Any] | None:
        if next(refusals, None) is None:
            return None
        return {
            "code": "UNAVAILABLE",
            "message": "gateway starting",
            "retryable": True,
            "retryAfterMs": 20,
            "details": {"reason": "startup-sidecars"},
        }

    gateway.connect_check = still_starting
    with make_client(gateway, backoff=Backoff(initial=30)) as client:
        client.wait_until_live(10)
        assert len(gateway.attempts) == 3


def test_rate_limited_waits_retry_after_ms_then_connects(gateway: FakeGateway) -> None:
    limited = iter([True])

    def rate_limit(params: dict[str, Any]) -> dict[str, Any] | None:
        if not next(limited, False):
            return None
        return {
            "code": "INVALID_REQUEST",
            "message": "too many failed attempts",
            "retryAfterMs": 50,
            "details": {"code": "AUTH_RATE_LIMITED"},
        }

    gateway.connect_check = rate_limit
    # A 30 s backoff would stall the test: only retryAfterMs lets it connect promptly.
    with make_client(gateway, backoff=Backoff(initial=30)) as client:
        client.wait_until_live(10)
        assert len(gateway.attempts) == 2


def test_pairing_required_shows_the_request_id_and_keeps_retrying(gateway: FakeGateway) -> None:
    approved = threading.Event()

    def pairing(params: dict[str, Any]) -> dict[str, Any] | None:
        if approved.is_set():
            return None
        return {
            "code": "NOT_PAIRED",
            "message": "pairing required",
            "details": {"code": "PAIRING_REQUIRED", "requestId": "req-42"},
        }

    gateway.connect_check = pairing
    with make_client(gateway) as client:
        wait_for(lambda: len(gateway.attempts) >= 3, what="pairing retries")
        error = client.last_error
        assert isinstance(error, PairingRequired)
        assert error.request_id == "req-42"
        assert error.device_id == client.device_id
        assert "req-42" in str(error)
        assert client.status == "connecting"  # never connected yet
        approved.set()
        client.wait_until_live(10)


def test_events_during_the_initial_sync_are_all_delivered(gateway: FakeGateway) -> None:
    """Regression: events sent while the sync's RPCs are in flight were lost as unhandled."""
    release = asyncio.Event()

    async def agents_list(params: dict[str, Any]) -> Any:
        await release.wait()
        return {"agents": []}

    async def flood(peer: Peer) -> None:
        for n in range(50):
            await FakeGateway.send_event(peer, "sessions.changed", {"n": n})
        release.set()

    async def on_sync(client: GatewayClient) -> None:
        await client.acall("agents.list")

    gateway.methods["agents.list"] = agents_list
    gateway.on_hello = flood
    received: list[int] = []
    client = make_client(gateway, on_sync=on_sync)
    client.on("sessions.changed", lambda e: received.append(e.payload["n"]))
    with client:
        client.wait_until_live(10)
        assert received == list(range(50))


def test_rpcs_made_during_the_sync_get_their_answers(gateway: FakeGateway) -> None:
    """Regression: the sync awaited answers before the read loop ran, and hung forever."""
    answers: list[Any] = []

    async def on_sync(client: GatewayClient) -> None:
        answers.append(await client.acall("agents.list", timeout=5))

    with make_client(gateway, on_sync=on_sync) as client:
        client.wait_until_live(10)
        assert answers == [{"defaultId": "main", "agents": [{"id": "main"}]}]


def test_call_from_the_loop_thread_raises_instead_of_deadlocking(gateway: FakeGateway) -> None:
    outcomes: list[BaseException] = []

    def handler(event: Event) -> None:
        try:
            client.call("agents.list")
        except RuntimeError as exc:
            outcomes.append(exc)

    client = make_client(gateway)
    client.on("health", handler)
    with client:
        client.wait_until_live(10)
        gateway.emit("health", {})
        wait_for(lambda: outcomes, what="the handler's attempt")
        assert "acall" in str(outcomes[0])
        assert client.status == "live"


def test_acall_works_from_another_event_loop(gateway: FakeGateway) -> None:
    with make_client(gateway) as client:
        client.wait_until_live(10)
        payload = asyncio.run(client.acall("agents.list"))
        assert payload["defaultId"] == "main"


def test_a_failing_handler_is_counted_and_does_not_stop_the_client(
    gateway: FakeGateway,
) -> None:
    seen: list[str] = []
    client = make_client(gateway)
    client.on("health", lambda e: 1 / 0)
    client.on_any(lambda e: seen.append(e.event))
    with client:
        client.wait_until_live(10)
        gateway.emit("health", {})
        gateway.emit("tick", {})
        wait_for(lambda: seen == ["health", "tick"])
        assert client.stats.handler_errors == 1
        assert client.status == "live"


@pytest.mark.parametrize(
    "frame",
    [
        "not json",
        b"\x00\x01binary",
        "[1, 2, 3]",
        '{"type": "event"}',
        '{"type": "res", "id": "999", "ok": true}',
        '{"type": "mystery"}',
        '{"type": "event", "event": "health", "seq": "one"}',
    ],
)
def test_bad_frames_are_counted_and_skipped(gateway: FakeGateway, frame: str | bytes) -> None:
    with make_client(gateway) as client:
        client.wait_until_live(10)
        gateway.send_raw(frame)
        gateway.emit("tick", {})
        wait_for(lambda: client.stats.events == 1, what="the tick after the bad frame")
        assert client.stats.bad_frames + client.stats.unknown_responses == 1
        assert client.call("agents.list")["defaultId"] == "main"


def test_close_fails_pending_calls_and_stops_the_thread(gateway: FakeGateway) -> None:
    gateway.answer("never", delay=3600)
    before = set(threading.enumerate())
    client = make_client(gateway).start()
    client.wait_until_live(10)
    caller, errors = call_in_background(client, gateway, "never")
    client.close()
    caller.join(5)
    assert isinstance(errors[0], ClientClosed)
    assert client.status == "closed"
    assert not {t for t in set(threading.enumerate()) - before if t.name == "ocnb-loop"}
    with pytest.raises(ClientClosed):
        client.call("agents.list")


def test_status_changes_are_reported_in_order(gateway: FakeGateway) -> None:
    statuses: list[str] = []
    client = make_client(gateway)
    client.on_status(statuses.append)
    with client:
        client.wait_until_live(10)
    assert statuses == ["connecting", "syncing", "live", "closed"]


def test_no_secret_reaches_a_repr_a_log_line_or_an_exception(
    gateway: FakeGateway, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    gateway.connect_check = lambda params: {
        "code": "INVALID_REQUEST",
        "message": f"unauthorized: token {params['auth']['token']} is not accepted",
        "details": {"code": "AUTH_TOKEN_MISSING"},
    }
    client = make_client(gateway)
    with client, pytest.raises(AuthError) as caught:
        client.wait_until_live(10)
    texts = [repr(client), repr(client.credentials), str(caught.value), repr(caught.value)]
    texts += [record.getMessage() for record in caplog.records]
    assert texts and not [text for text in texts if gateway.token in text]
    assert "********" in str(caught.value)


def test_start_twice_is_refused(gateway: FakeGateway) -> None:
    with make_client(gateway) as client, pytest.raises(RuntimeError):
        client.start()


def test_a_missing_scope_raises_scope_error(gateway: FakeGateway) -> None:
    async def forbidden(params: dict[str, Any]) -> Any:
        details = {"code": "MISSING_SCOPE", "missingScope": "operator.admin"}
        raise Reject("FORBIDDEN", "missing scope: operator.admin", details)

    gateway.methods["config.get"] = forbidden
    with make_client(gateway) as client:
        client.wait_until_live(10)
        with pytest.raises(ScopeError) as caught:
            client.call("config.get")
        assert caught.value.missing_scope == "operator.admin"
        assert client.status == "live"


def self_signed(folder: Path) -> tuple[ssl.SSLContext, Path]:
    """A server TLS context with a fresh self-signed certificate for 127.0.0.1, and its file."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ocnb test gateway")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "gateway.pem", folder / "gateway.key"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    return context, cert_file


def test_wss_refuses_an_untrusted_certificate_once_and_trusts_a_given_ca(tmp_path: Path) -> None:
    server_context, cert_file = self_signed(tmp_path)
    with FakeGateway(tls=server_context) as gateway:
        with GatewayClient(gateway.url, gateway.token) as client:
            with pytest.raises(CertificateError, match="certificate not trusted"):
                client.wait_until_live(10)
            assert client.status == "failed" and len(gateway.attempts) <= 1
        trusted = ssl.create_default_context(cafile=cert_file)
        with GatewayClient(gateway.url, gateway.token, ssl=trusted) as client:
            client.wait_until_live(10)


def test_a_huge_hostile_frame_is_logged_as_a_short_excerpt_without_secrets(
    gateway: FakeGateway, caplog: pytest.LogCaptureFixture
) -> None:
    with make_client(gateway) as client:
        client.wait_until_live(10)
        gateway.send_raw(gateway.token + "x" * 3_000_000)  # not JSON, 3 MB, starts with a secret
        gateway.emit("tick", {})
        wait_for(lambda: client.stats.events == 1, what="the tick after the bad frame")
    assert client.stats.bad_frames == 1
    messages = [record.getMessage() for record in caplog.records]
    assert messages and max(len(message) for message in messages) < 1_000
    assert not [message for message in messages if gateway.token in message]


def test_a_frame_over_the_gateways_own_max_payload_is_taken() -> None:
    """`policy.maxPayload` bounds what the gateway accepts, not what it sends."""
    with FakeGateway(max_payload=4096) as gateway, make_client(gateway) as client:
        client.wait_until_live(10)
        gateway.emit("health", {"padding": "x" * 5000})
        wait_for(lambda: client.stats.events == 1, what="the large health event")
        assert client.stats.bad_frames == 0
        assert client.stats.connects == 1 and client.status == "live"


def test_a_frame_over_max_frame_bytes_closes_with_a_clear_error_and_reconnects(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with FakeGateway() as gateway, make_client(gateway, max_frame_bytes=4096) as client:
        client.wait_until_live(10)
        gateway.emit("health", {"padding": "x" * 5000})
        wait_for(lambda: client.stats.reconnects == 1, what="a reconnect")
        client.wait_until_live(10)
        warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert any("over max_frame_bytes=4,096 (close 1009)" in line for line in warnings)
        assert client.stats.events == 0


def test_answers_to_unknown_or_already_answered_ids_reach_nobody(gateway: FakeGateway) -> None:
    with make_client(gateway) as client:
        client.wait_until_live(10)
        assert client.call("agents.list")["defaultId"] == "main"
        answered = gateway.peers[-1].requests[-1]["id"]
        for request_id in (answered, answered, "no-such-id"):
            gateway.send_raw(
                f'{{"type": "res", "id": "{request_id}", "ok": true, "payload": {{"x": 1}}}}'
            )
        wait_for(lambda: client.stats.unknown_responses == 3, what="three stray answers")
        assert client.call("agents.list")["defaultId"] == "main"
        assert client.stats.connects == 1 and client.status == "live"
