"""A loopback TCP proxy between a client and a gateway that misbehaves on a seeded schedule:
it drops connections, stalls (silence past the tick deadline), delays, and cuts a frame in
half before closing. `calm()` stops the chaos; `faults` counts what it did."""

from __future__ import annotations

import asyncio
import contextlib
import random
import threading
from collections import Counter

CHUNK = 65536


class ChaosProxy:
    def __init__(self, upstream_port: int, seed: int = 0, stall_seconds: float = 3.0) -> None:
        self.upstream_port = upstream_port
        self.stall_seconds = stall_seconds
        self.rng = random.Random(seed)
        self.chaos = True
        self.faults: Counter[str] = Counter()
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="chaos-proxy", daemon=True)

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/"

    def calm(self) -> None:
        self.chaos = False

    def __enter__(self) -> ChaosProxy:
        self._thread.start()
        assert self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1", 0))
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()
        server.close()
        tasks = asyncio.all_tasks(self._loop)
        for task in tasks:
            task.cancel()
        self._loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
        self._loop.run_until_complete(server.wait_closed())
        self._loop.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except OSError:
            writer.close()
            return
        # the client's requests pass untouched; the gateway's frames meet the chaos
        await asyncio.gather(_pipe(reader, up_writer), self._unruly(up_reader, writer, up_writer))

    async def _unruly(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        upstream: asyncio.StreamWriter,
    ) -> None:
        """Gateway → client, with a fault now and then (about one per two seconds of data)."""
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            while data := await reader.read(CHUNK):
                fault = self._fault() if self.chaos else None
                if fault is not None:
                    self.faults[fault] += 1
                if fault == "drop":
                    break
                if fault == "cut":
                    writer.write(data[: max(1, len(data) // 2)])
                    await writer.drain()
                    break
                if fault == "stall":
                    await asyncio.sleep(self.stall_seconds)
                elif fault == "delay":
                    await asyncio.sleep(self.rng.uniform(0.05, 0.5))
                writer.write(data)
                await writer.drain()
        for side in (writer, upstream):
            with contextlib.suppress(ConnectionError, RuntimeError):
                side.close()

    def _fault(self) -> str | None:
        roll = self.rng.random()
        if roll < 0.004:
            return "drop"
        if roll < 0.008:
            return "cut"
        if roll < 0.010:
            return "stall"
        if roll < 0.040:
            return "delay"
        return None


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
        while data := await reader.read(CHUNK):
            writer.write(data)
            await writer.drain()
    with contextlib.suppress(ConnectionError, RuntimeError):
        writer.close()
