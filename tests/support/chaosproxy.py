"""A loopback TCP proxy between a client and a gateway that misbehaves on a seeded schedule:
it drops connections, stalls (silence past the tick deadline), delays, and cuts a frame in
half before closing. `calm()` stops the chaos; `faults` counts what it did."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections import Counter

from ocnb.demo_gateway.http import READ_LIMIT, pipe
from support.loopbackproxy import LoopbackProxy


class ChaosProxy(LoopbackProxy):
    def __init__(self, upstream_port: int, seed: int = 0, stall_seconds: float = 3.0) -> None:
        super().__init__(upstream_port, "chaos-proxy")
        self.stall_seconds = stall_seconds
        self.rng = random.Random(seed)
        self.chaos = True
        self.faults: Counter[str] = Counter()

    def calm(self) -> None:
        self.chaos = False

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except OSError:
            writer.close()
            return
        # the client's requests pass untouched; the gateway's frames meet the chaos
        await asyncio.gather(pipe(reader, up_writer), self._unruly(up_reader, writer, up_writer))

    async def _unruly(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        upstream: asyncio.StreamWriter,
    ) -> None:
        """Gateway → client, with a fault now and then (about one per two seconds of data)."""
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            while data := await reader.read(READ_LIMIT):
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
