"""`Refresher`: the thread `ocnb-refresh` that pushes new snapshots into a fleet's widgets.

It wakes when the store has changed (never otherwise), at most `hz` times a second, builds each
widget's snapshot through its own cursor, and sets the traits of widgets whose snapshot differs
inside one `hold_sync()` — so a widget updates while a notebook cell is still running.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from typing import Protocol

from ocnb.errors import describe

log = logging.getLogger(__name__)


class Refreshable(Protocol):
    def refresh(self) -> bool:
        """Rebuild and send this widget's state if it changed; True if it sent anything."""
        ...


class Refresher:
    """Refreshes registered widgets after store changes, coalesced to at most `hz` per second."""

    def __init__(self, hz: float = 4.0) -> None:
        self.interval = 1.0 / max(0.1, min(hz, 4.0))
        self.wakeups = 0
        self.sends = 0
        self.last_error: str | None = None
        self._widgets: weakref.WeakSet[Refreshable] = weakref.WeakSet()
        self._changed = threading.Event()
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ocnb-refresh", daemon=True)
        self._thread.start()

    def add(self, widget: Refreshable) -> None:
        self._widgets.add(widget)
        self._changed.set()

    def changed(self) -> None:
        """Note that the store changed (cheap; call it from any thread)."""
        self._changed.set()

    def stop(self) -> None:
        """End the thread, then refresh once more so that the widgets show the final state
        (a closed fleet's status bar says `closed`)."""
        self._stopped.set()
        self._changed.set()
        self._thread.join(5)
        self._refresh_all()

    def _refresh_all(self) -> None:
        for widget in list(self._widgets):
            try:
                self.sends += int(widget.refresh())
            except Exception as exc:  # a broken widget must not stop the others
                self.last_error = describe(exc)
                log.exception("ocnb widget refresh failed")

    def _run(self) -> None:
        while not self._stopped.is_set():
            self._changed.wait()
            if self._stopped.is_set():
                return
            self._changed.clear()
            self.wakeups += 1
            started = time.monotonic()
            self._refresh_all()
            self._stopped.wait(max(0.0, self.interval - (time.monotonic() - started)))
