"""A loopback proxy that forwards plain HTTP to a gateway and, while `blocking`, refuses
WebSocket upgrades the way a proxy that strips them does (403 to the upgrade request)."""

from __future__ import annotations

import asyncio

from ocnb.demo_gateway.http import pipe
from support.loopbackproxy import LoopbackProxy

REFUSAL = b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


class BlockingProxy(LoopbackProxy):
    def __init__(self, upstream_port: int) -> None:
        super().__init__(upstream_port, "block-proxy")
        self.blocking = True
        self.refused = 0

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            writer.close()
            return
        if self.blocking and b"upgrade: websocket" in head.lower():
            self.refused += 1
            writer.write(REFUSAL)
            await writer.drain()
            writer.close()
            return
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        up_writer.write(head)
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
