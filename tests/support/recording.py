"""Record what a gateway sends, reduced to shapes (keys and JSON types, never values).

A shape keeps every key seen in any frame of a kind, so shapes of the real gateway and of the
demo can be compared key for key. Shapes hold no values, so no secret can reach a fixture.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from websockets.asyncio.client import connect

from ocnb import DeviceIdentity, GatewayClient, InvalidRequest, protocol
from ocnb.protocol import Event
from support.driver import Driver

FIXTURES = Path(__file__).parent.parent / "fixtures"
# Kinds both real gateways send and the demo must reproduce key for key.
REQUIRED_KINDS = (
    "hello-ok",
    "rpc/agents.list",
    "rpc/sessions.list",
    "session-row",
    "sessions.changed/phase:start",
    "sessions.changed/phase:end",
    "sessions.changed/reason:create",
    "sessions.changed/reason:delete",
    "agent/lifecycle:start",
    "agent/lifecycle:end",
    "agent/lifecycle:error",
    "agent/assistant",
    "chat/delta",
    "chat/final",
    "chat/aborted",
    "session.message/user",
    "session.message/assistant",
)
# Kinds compared whenever both sides have them. `status` and `sessions.usage` are left out:
# they are diagnostics and caches the demo models only in part.
COMPARED_PREFIXES = (
    "hello-ok", "rpc/agents.list", "rpc/sessions.list", "rpc/sessions.describe", "session-row",
    "sessions.changed/", "agent/", "chat/", "session.message/", "health", "rpc/health",
    "rpc/usage.cost", "rpc/system-presence", "cron",
)  # fmt: skip
Shape = Any
# Keys that come and go on a real gateway from one run to the next: runtime diagnostics that
# follow the machine's load or startup progress (plugin health appears once plugins have
# loaded), cache refresh times, the update checker.
VOLATILE_KEYS = frozenset(
    {"eventLoop", "modelRuntime", "plugins", "updateSchedule", "updateAvailable", "refreshedAt"}
)


def shape_of(value: Any) -> Shape:
    """The shape of a JSON value: dicts by key, lists by their merged items, scalars by type."""
    if isinstance(value, dict):
        return {key: shape_of(item) for key, item in value.items()}
    if isinstance(value, list):
        return [merge_all(shape_of(item) for item in value)] if value else []
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    return "string"


def merge(a: Shape, b: Shape) -> Shape:
    if isinstance(a, dict) and isinstance(b, dict):
        return {
            key: merge(a[key], b[key]) if key in a and key in b else a.get(key, b.get(key))
            for key in {**a, **b}
        }
    if isinstance(a, list) and isinstance(b, list):
        return [merge_all([*a, *b])] if a or b else []
    if isinstance(a, (dict, list)):
        return a
    if isinstance(b, (dict, list)):
        return b
    return "|".join(sorted(set(a.split("|")) | set(b.split("|"))))


def merge_all(shapes: Iterable[Shape]) -> Shape:
    merged: Shape = None
    for item in shapes:
        merged = item if merged is None else merge(merged, item)
    return merged


def key_differences(real: Shape, demo: Shape, path: str = "") -> list[str]:
    """Keys the real gateway sends that the demo lacks, and keys only the demo sends."""
    if isinstance(real, list) and isinstance(demo, list):
        return key_differences(real[0], demo[0], f"{path}[]") if real and demo else []
    if not (isinstance(real, dict) and isinstance(demo, dict)):
        return []
    differences = [f"missing {path}.{key}" for key in real.keys() - demo.keys() - VOLATILE_KEYS]
    differences += [f"extra {path}.{key}" for key in demo.keys() - real.keys() - VOLATILE_KEYS]
    for key in real.keys() & demo.keys() - VOLATILE_KEYS:
        differences += key_differences(real[key], demo[key], f"{path}.{key}")
    return differences


def kind_of(event: str, payload: Any) -> str:
    """The kind of an event frame, fine enough that frames of one kind share their keys."""
    data = payload if isinstance(payload, dict) else {}
    if event == "agent":
        stream = data.get("stream")
        phase = (data.get("data") or {}).get("phase") if stream == "lifecycle" else None
        return f"agent/{stream}" + (f":{phase}" if phase else "")
    if event == "chat":
        return f"chat/{data.get('state')}"
    if event == "sessions.changed":
        if data.get("phase"):
            return f"sessions.changed/phase:{data['phase']}"
        return f"sessions.changed/reason:{data.get('reason')}"
    if event == "session.message":
        return f"session.message/{(data.get('message') or {}).get('role')}"
    return event


class ShapeRecorder:
    """Collects shapes per kind; thread-safe so client handlers can feed it."""

    def __init__(self) -> None:
        self.shapes: dict[str, Shape] = {}
        self.events: list[tuple[str, Any]] = []
        self._lock = threading.Lock()

    def add(self, kind: str, value: Any) -> None:
        with self._lock:
            old = self.shapes.get(kind)
            self.shapes[kind] = shape_of(value) if old is None else merge(old, shape_of(value))

    def add_event(self, event: Event) -> None:
        with self._lock:
            self.events.append((event.event, event.payload))
        self.add(kind_of(event.event, event.payload), event.payload)
        row = event.payload.get("session") if isinstance(event.payload, dict) else None
        if isinstance(row, dict):
            self.add("session-row", row)

    def add_rpc(self, method: str, payload: Any) -> None:
        self.add(f"rpc/{method}", payload)
        if method == "sessions.list":
            for row in payload.get("sessions", []):
                self.add("session-row", row)

    def wait_for_kinds(self, kinds: Iterable[str], timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while missing := [kind for kind in kinds if kind not in self.shapes]:
            if time.monotonic() > deadline:
                raise TimeoutError(f"never saw {missing}")
            time.sleep(0.02)

    def wait_for(self, predicate: Any, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                if any(predicate(name, payload) for name, payload in self.events):
                    return
            if time.monotonic() > deadline:
                raise TimeoutError(f"no matching event within {timeout} s")
            time.sleep(0.02)


def record_hello(url: str, token: str, recorder: ShapeRecorder) -> None:
    """Do one handshake by hand to keep the whole `hello-ok` payload (minus its token)."""

    async def handshake() -> dict[str, Any]:
        async with connect(url, compression=None) as ws:
            challenge = protocol.parse_challenge(protocol.decode_frame(await ws.recv()))  # type: ignore[arg-type]
            params = protocol.connect_params(
                auth={"token": token},
                challenge=challenge,
                client_version="0.0.0",
                device=DeviceIdentity.generate(),
            )
            await ws.send(protocol.encode_request("1", "connect", params))
            while True:
                frame = protocol.decode_frame(await ws.recv())
                if isinstance(frame, protocol.Response):
                    assert frame.ok, frame.error
                    payload: dict[str, Any] = frame.payload
                    return payload

    recorder.add("hello-ok", asyncio.run(handshake()))


def run_finished(run_id: str) -> Any:
    def finished(name: str, payload: Any) -> bool:
        return (
            name == "agent"
            and payload.get("runId") == run_id
            and payload.get("stream") == "lifecycle"
            and (payload.get("data") or {}).get("phase") in ("end", "error")
        )

    return finished


def record_scenario(
    url: str,
    token: str,
    agents: tuple[str, str, str],
    driver: Driver,
    *,
    until: Iterable[str] = (),
) -> ShapeRecorder:
    """Drive a success, a failure and an abort, create and delete a session, and record it all.

    `agents` are three agent ids whose models succeed fast, stream slowly, and fail; `until`
    lists kinds to keep recording for after the scenario (for a gateway with its own activity).
    """
    fast, slow, broken = agents
    recorder = ShapeRecorder()
    record_hello(url, token, recorder)
    observer = GatewayClient(url, token)
    observer.on_any(recorder.add_event)
    with observer, driver:
        observer.wait_until_live(60)
        for key in (f"agent:{fast}:rec", f"agent:{broken}:rec"):
            recorder.wait_for(run_finished(driver.run(key)))
        slow_key = f"agent:{slow}:rec"
        slow_run = driver.run(slow_key)
        recorder.wait_for(lambda n, p: n == "agent" and p.get("runId") == slow_run)
        driver.abort(slow_key, slow_run)
        recorder.wait_for(run_finished(slow_run))
        label = f"rec-{uuid.uuid4().hex[:8]}"  # labels are unique on a gateway
        driver.create_session(fast, f"agent:{fast}:{label}", label=label)  # kept: a labelled row
        driver.create_session(fast, f"agent:{fast}:{label}-gone")
        driver.delete_session(f"agent:{fast}:{label}-gone")
        for method, params in (
            ("agents.list", {}),
            ("sessions.list", {"limit": 500}),
            ("sessions.describe", {"key": f"agent:{fast}:rec"}),
            ("sessions.usage", {"agentScope": "all"}),
            ("usage.cost", {"agentScope": "all", "days": 7}),
            ("health", {}),
            ("status", {}),
            ("system-presence", {}),
        ):
            try:
                answer = observer.call(method, params)
            except InvalidRequest:  # v3 knows fewer params (no agentScope)
                answer = observer.call(method, {})
            recorder.add_rpc(method, answer)
        recorder.wait_for_kinds(until)
    return recorder


def without_rows(kind: str, shape: Shape, row_keys: set[str]) -> Shape:
    """`shape` without the session rows it carries, and for session events without the row
    fields copied to their top level: rows are compared once, as the kind `session-row`,
    since which optional fields a row has depends on the session's state."""
    if not isinstance(shape, dict) or kind == "session-row":
        return shape
    stripped = {k: v for k, v in shape.items() if k not in ("session", "sessions")}
    if kind.startswith(("sessions.changed/", "session.message/")):
        stripped = {k: v for k, v in stripped.items() if k not in row_keys}
    return stripped


def compare(real: dict[str, Shape], demo: dict[str, Shape]) -> dict[str, list[str]]:
    """Key differences per compared kind that both sides sent."""
    row_keys = set(real.get("session-row", {})) | set(demo.get("session-row", {}))
    kinds = sorted(k for k in real.keys() & demo.keys() if k.startswith(COMPARED_PREFIXES))
    differences = {
        kind: key_differences(
            without_rows(kind, real[kind], row_keys), without_rows(kind, demo[kind], row_keys)
        )
        for kind in kinds
    }
    return {kind: found for kind, found in differences.items() if found}


def save(recorder: ShapeRecorder, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(dict(sorted(recorder.shapes.items())), indent=1, sort_keys=True))


def load(path: Path) -> dict[str, Shape]:
    shapes: dict[str, Shape] = json.loads(path.read_text())
    return shapes
