"""Budgets and alerts as code: rules over the store, checked after every change and on a timer.

A rule is SQL (every row it returns is something firing; its `subject` column, else its first,
names what) or a Python predicate over the fleet (true fires for the whole fleet; a frame or a
list of names fires per subject). A subject fires once when it starts matching and resolves
when it stops; both are recorded in the store's `alerts` table.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pandas as pd

from ocnb.errors import describe
from ocnb.ops import Upsert

if TYPE_CHECKING:
    from ocnb.fleet import Fleet

log = logging.getLogger(__name__)

Rule = str | Callable[["Fleet"], Any]
FLEET = "fleet"  # the subject of a rule that fires for the fleet as a whole


@dataclass(frozen=True)
class Firing:
    """One subject starting to match a rule: what `on_fire` receives."""

    alert: str
    subject: str
    fired_at: pd.Timestamp
    detail: dict[str, Any]


@dataclass(eq=False)
class Alert:
    """A named rule; `firing` maps each matching subject to when it started to match."""

    name: str
    rule: Rule
    on_fire: Callable[[Firing], Any] | None = None
    firing: dict[str, Firing] = field(default_factory=dict)
    checks: int = 0
    last_error: str | None = None

    def matches(self, fleet: Fleet) -> dict[str, dict[str, Any]]:
        """The subjects the rule matches now, each with the row (or value) that matched."""
        if isinstance(self.rule, str):
            return _subjects(fleet.sql(self.rule))
        result = self.rule(fleet)
        if isinstance(result, pd.DataFrame):
            return _subjects(result)
        if isinstance(result, str):
            return {result: {}}
        if isinstance(result, Iterable) and not isinstance(result, bytes | dict):
            return {str(subject): {} for subject in result}
        return {FLEET: {"value": result}} if result else {}

    def __repr__(self) -> str:
        firing = ", ".join(self.firing) or "nothing"
        return f"<Alert {self.name!r}: firing for {firing}; {self.checks} checks>"


def _subjects(frame: pd.DataFrame) -> dict[str, dict[str, Any]]:
    if frame.empty:
        return {}
    column = "subject" if "subject" in frame.columns else frame.columns[0]
    rows = frame.astype(object).where(frame.notna(), None).to_dict("records")
    return {str(row[column]): {str(k): v for k, v in row.items()} for row in rows}


class AlertBook:
    """A fleet's alerts, checked on a thread of their own (`ocnb-alerts`)."""

    def __init__(self, fleet: Fleet, interval: float = 5.0) -> None:
        self.fleet = fleet
        self.interval = interval
        self.alerts: dict[str, Alert] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopped = False
        fleet.on_change(lambda _: self._wake.set())
        self._thread = threading.Thread(target=self._check_forever, name="ocnb-alerts", daemon=True)
        self._thread.start()

    def add(self, alert: Alert) -> Alert:
        with self._lock:
            if alert.name in self.alerts:
                raise ValueError(f"an alert named {alert.name!r} exists; remove it first")
            self.alerts[alert.name] = alert
        self._wake.set()
        return alert

    def remove(self, name: str) -> None:
        with self._lock:
            self.alerts.pop(name)

    def firing(self) -> list[Firing]:
        with self._lock:
            return [f for alert in self.alerts.values() for f in alert.firing.values()]

    def check(self) -> None:
        """Evaluate every rule once: record and announce what started or stopped matching."""
        with self._lock:
            alerts = list(self.alerts.values())
        for alert in alerts:
            self._check(alert)

    def _check(self, alert: Alert) -> None:
        try:
            now_matching = alert.matches(self.fleet)
        except Exception as exc:
            alert.last_error = describe(exc)
            log.warning("alert %r could not be checked: %s", alert.name, alert.last_error)
            return
        alert.checks += 1
        alert.last_error = None
        now = pd.Timestamp.now(tz="UTC")
        for subject in alert.firing.keys() - now_matching.keys():
            fired = alert.firing.pop(subject)
            self._record(fired, resolved_at=now)
        for subject in now_matching.keys() - alert.firing.keys():
            fired = Firing(alert.name, subject, now, now_matching[subject])
            alert.firing[subject] = fired
            self._record(fired, resolved_at=None)
            if alert.on_fire is not None:
                try:
                    alert.on_fire(fired)
                except Exception:
                    log.exception("on_fire of alert %r failed", alert.name)

    def _record(self, fired: Firing, resolved_at: pd.Timestamp | None) -> None:
        row = {
            "alert": fired.alert,
            "subject": fired.subject,
            "fired_at": int(fired.fired_at.timestamp() * 1000),
            "resolved_at": None if resolved_at is None else int(resolved_at.timestamp() * 1000),
            "detail": json.dumps(fired.detail, default=str),
        }
        self.fleet.store.submit([Upsert("alerts", row)])

    def _check_forever(self) -> None:
        while not self._stopped:
            self._wake.wait(self.interval)
            self._wake.clear()
            if not self._stopped:
                self.check()
            time.sleep(0.25)  # at most four checks a second, however busy the fleet

    def stop(self) -> None:
        self._stopped = True
        self._wake.set()
        self._thread.join(5)
