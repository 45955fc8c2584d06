"""The vocabulary the gateway side and the store side share, imported by both and by nothing
below them: store operations (what the writer applies), follow-ups (what the feed does next on
the gateway) and the statuses of gateways and runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

# --- statuses ------------------------------------------------------------------------------------

POLLING: Literal["polling (HTTP)"] = "polling (HTTP)"
GatewayStatus = Literal[
    "idle", "connecting", "syncing", "live", "polling (HTTP)", "reconnecting", "failed", "closed"
]
STATUS_ORDER: tuple[GatewayStatus, ...] = (  # least healthy first: a fleet shows its worst
    "failed", "closed", "reconnecting", "connecting", "idle", "syncing", POLLING, "live",
)  # fmt: skip
READY: tuple[GatewayStatus, ...] = ("live", POLLING)  # what `connect()` waits for
ONLINE: tuple[GatewayStatus, ...] = ("live", "syncing", POLLING)  # agents shown as not offline
TERMINAL_STATUSES = frozenset({"done", "failed", "killed", "interrupted", "timeout"})  # a run's

# --- store operations ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Upsert:
    """Insert a row or merge it into the row with the same key (by the table's rules)."""

    table: Literal["sessions", "runs", "agents", "gateways", "session_usage", "alerts"]
    row: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Append:
    """Append a row to a log table; `usage` rows with a known key are skipped."""

    table: Literal["events", "usage", "sync_log"]
    row: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ReplacePresence:
    """The gateway's full presence list at `version`; older versions are dropped."""

    gateway: str
    version: int
    rows: list[dict[str, Any]]


@dataclass(frozen=True, slots=True)
class Sweep:
    """After a full sync: rows of `gateway` not in `keep` and older than `before` are gone."""

    table: Literal["sessions", "agents"]
    gateway: str
    keep: frozenset[str]
    before: int


@dataclass(frozen=True, slots=True)
class Rebase:
    """A re-sync begins: the gateway's answer as of `before` supersedes every session row of
    `gateway` held from earlier, even one newer than the gateway now reports (after a restart
    a gateway can come back with older state than it last announced)."""

    gateway: str
    before: int


Op = Upsert | Append | ReplacePresence | Sweep | Rebase

# --- follow-ups: reads an input asks the feed to make ----------------------------------------


@dataclass(frozen=True, slots=True)
class RefetchRoster:
    """The roster changed (or may have): read `agents.list` again, soon."""


@dataclass(frozen=True, slots=True)
class Describe:
    """A v3 session row is partial or stale: read it with `sessions.describe`; after a run's
    end (`run_ended`), again for a while (v3 saves the run's tokens later, silently)."""

    session_key: str
    run_ended: bool = False


@dataclass(frozen=True, slots=True)
class Resync:
    """The fleet as a whole may have changed: run the whole sync again."""

    reason: str


FollowUp = RefetchRoster | Describe | Resync


class Ingested(NamedTuple):
    """What one input means: operations for the store, follow-ups for the feed."""

    ops: list[Op]
    follow_ups: tuple[FollowUp, ...] = ()
