"""`LoopThread`: an asyncio loop running on a daemon thread of its own, driven from others.

The client runs its connection on one, the demo gateway its server; the tests' fakes too.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class LoopThread:
    """Start it (optionally running an opening coroutine first), hand it coroutines from any
    thread, stop it: the tasks left are cancelled and awaited, then the loop is closed."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped" if self.loop else "not started"
        return f"<LoopThread {self.name} {state}>"

    @property
    def running(self) -> bool:
        return self.loop is not None and not self.loop.is_closed()

    def is_current(self) -> bool:
        """Whether the calling thread is this loop's."""
        return threading.current_thread() is self._thread

    def start(self, opening: Callable[[], Awaitable[Any]] | None = None) -> None:
        """Run the loop on a new thread; returns once `opening()` (if given) has run on it,
        raising what it raised (the loop is then closed)."""
        if self._thread is not None:
            raise RuntimeError(f"{self.name} was already started")
        loop = asyncio.new_event_loop()
        self.loop = loop
        opened = concurrent.futures.Future[None]()

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                if opening is not None:
                    loop.run_until_complete(opening())
            except BaseException as exc:
                opened.set_exception(exc)
                loop.close()
                return
            opened.set_result(None)
            try:
                loop.run_forever()
            finally:
                leftovers = asyncio.all_tasks(loop)
                for task in leftovers:
                    task.cancel()
                loop.run_until_complete(asyncio.gather(*leftovers, return_exceptions=True))
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.close()

        self._thread = threading.Thread(target=run, name=self.name, daemon=True)
        self._thread.start()
        opened.result()

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        """Schedule `coro` on the loop; `RuntimeError` (and `coro` closed) if it is not running."""
        loop = self.loop
        if loop is None or loop.is_closed():
            coro.close()
            raise RuntimeError(f"{self.name} is not running")
        try:
            return asyncio.run_coroutine_threadsafe(coro, loop)
        except RuntimeError:  # closed meanwhile
            coro.close()
            raise

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = 10) -> T:
        """Run `coro` on the loop and wait for its result (not from the loop's own thread)."""
        return self.submit(coro).result(timeout)

    def call_soon(self, callback: Callable[[], object]) -> None:
        """Call `callback()` on the loop thread soon; nothing if the loop is not running."""
        loop = self.loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # closed meanwhile
                loop.call_soon_threadsafe(callback)

    def stop(self, timeout: float = 10) -> None:
        """Stop the loop (its tasks are cancelled) and wait for its thread to end."""
        self.call_soon(self._stop_loop)
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def _stop_loop(self) -> None:
        assert self.loop is not None
        self.loop.stop()
