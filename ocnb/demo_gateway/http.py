"""The demo's HTTP side of its port: `GET /healthz` and `POST /tools/invoke` (the tools
`sessions_list` and `agents_list`), as a real gateway answers them.

The demo's WebSocket server (websockets) cannot read request bodies, so with `http=True` a front
listens on the public port: WebSocket upgrades are piped to the WebSocket server, everything
else is HTTP/1.1 parsed with h11 and answered here.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from typing import Any

import h11

from ocnb.demo_gateway import payloads
from ocnb.demo_gateway.world import World

READ_LIMIT = 65536
MAX_BODY = 1 << 20
MULTIPLE_AGENTS = (
    'Multiple agents are configured, but session key "main" has no explicit owner. '
    "Pass agentId or use an agent-prefixed session key."
)


class HttpFront:
    """Answers the HTTP side and pipes WebSocket upgrades to `ws_port()`."""

    def __init__(self, world: World, token: Callable[[], str], ws_port: Callable[[], int]) -> None:
        self.world = world
        self.token = token
        self.ws_port = ws_port
        self.requests = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            writer.close()
            return
        if b"upgrade: websocket" in head.lower():
            await self._pipe_to_websocket(head, reader, writer)
        else:
            await self._serve_http(head, reader, writer)

    async def _pipe_to_websocket(
        self, head: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.ws_port())
        except OSError:
            writer.close()
            return
        up_writer.write(head)
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    async def _serve_http(
        self, head: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        connection = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_BODY)
        connection.receive_data(head)
        try:
            while True:
                request, body = await _next_request(connection, reader)
                if request is None:
                    break
                self.requests += 1
                status, answer = self.answer(request, body)
                data = json.dumps(answer).encode()
                headers = [("Content-Type", "application/json"), ("Content-Length", str(len(data)))]
                writer.write(connection.send(h11.Response(status_code=status, headers=headers)))
                writer.write(connection.send(h11.Data(data=data)))
                writer.write(connection.send(h11.EndOfMessage()))
                await writer.drain()
                if connection.our_state is not h11.DONE or connection.their_state is not h11.DONE:
                    break
                connection.start_next_cycle()
        except (h11.ProtocolError, ConnectionError):
            pass
        with contextlib.suppress(ConnectionError, RuntimeError):
            writer.close()

    # --- answers ---------------------------------------------------------------------------------

    def answer(self, request: h11.Request, body: bytes) -> tuple[int, dict[str, Any]]:
        path = request.target.decode("ascii", "replace").split("?", 1)[0]
        if path == "/healthz" and request.method == b"GET":
            return 200, {"ok": True, "status": "live"}
        if path != "/tools/invoke":
            return 404, {"error": {"message": "Not Found", "type": "not_found"}}
        if request.method != b"POST":
            return 405, {"error": {"message": "Method Not Allowed", "type": "method_not_allowed"}}
        headers = {name.lower(): value for name, value in request.headers}
        if headers.get(b"authorization", b"") != f"Bearer {self.token()}".encode():
            return 401, {"error": {"message": "Unauthorized", "type": "unauthorized"}}
        try:
            call = json.loads(body or b"{}")
        except ValueError:
            return 400, _failure("invalid_request", "body is not JSON")
        return self._invoke(call if isinstance(call, dict) else {})

    def _invoke(self, call: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        tool = call.get("tool") or call.get("name")
        agent_id = call.get("agentId")
        if not tool:
            return 400, _failure("invalid_request", "tools.invoke requires name")
        if agent_id is None and len(self.world.agents) > 1:
            return 400, _failure("invalid_request", MULTIPLE_AGENTS)
        requester = agent_id or next(iter(self.world.agents), None)
        if requester not in self.world.agents:
            return 400, _failure("invalid_request", f'Unknown agent id "{requester}".')
        args = call.get("args")
        args = args if isinstance(args, dict) else {}
        if tool == "sessions_list":
            details = payloads.slim_sessions(self.world, args.get("limit"))
        elif tool == "agents_list":
            details = payloads.requester_agents(self.world, requester)
        else:
            return 404, _failure("not_found", f"Tool not available: {tool}")
        text = json.dumps(details, indent=2)
        return 200, {
            "ok": True,
            "result": {"content": [{"type": "text", "text": text}], "details": details},
        }


async def _next_request(
    connection: h11.Connection, reader: asyncio.StreamReader
) -> tuple[h11.Request | None, bytes]:
    """The next request and its body, or None when the client is done."""
    request: h11.Request | None = None
    body = b""
    while True:
        event = connection.next_event()
        if event is h11.NEED_DATA:
            connection.receive_data(await reader.read(READ_LIMIT))
        elif isinstance(event, h11.Request):
            request = event
        elif isinstance(event, h11.Data):
            body += event.data
        elif isinstance(event, h11.EndOfMessage):
            return request, body
        elif isinstance(event, h11.ConnectionClosed) or event is h11.PAUSED:
            return None, b""


def _failure(kind: str, message: str) -> dict[str, Any]:
    return {"ok": False, "error": {"type": kind, "message": message}}


async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copy `reader` to `writer` until either side closes, then close `writer`."""
    with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
        while data := await reader.read(READ_LIMIT):
            writer.write(data)
            await writer.drain()
    with contextlib.suppress(ConnectionError, RuntimeError):
        writer.close()
