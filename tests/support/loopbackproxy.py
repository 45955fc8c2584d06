"""A loopback TCP proxy in front of a gateway, served by its own `LoopThread`; subclasses say
what happens to each connection (`_handle`), copying with the demo's `pipe`."""

from __future__ import annotations

import asyncio
from typing import Self

from ocnb.loop import LoopThread


class LoopbackProxy:
    def __init__(self, upstream_port: int, name: str) -> None:
        self.upstream_port = upstream_port
        self.port = 0
        self._loop_thread = LoopThread(name)
        self._server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/"

    def __enter__(self) -> Self:
        self._loop_thread.start(self._listen)
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop_thread.run(self._stop_listening())
        self._loop_thread.stop(10)

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _stop_listening(self) -> None:
        if self._server is not None:
            self._server.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        raise NotImplementedError
