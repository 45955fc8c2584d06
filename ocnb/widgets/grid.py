"""`FleetGrid` and `SessionTable`: anywidget views of the store that refresh themselves."""

from __future__ import annotations

import html
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anywidget
import traitlets

from ocnb.widgets.snapshot import agents_snapshot, gateway_statuses, sessions_snapshot, unpack

if TYPE_CHECKING:
    from ocnb.fleet import Fleet

HERE = Path(__file__).parent


def _module(name: str) -> str:
    """A widget's ESM: the Arrow reader, then the view (anywidget loads a single module)."""
    return (HERE / "arrow.js").read_text() + "\n" + (HERE / name).read_text()


DEFAULT_COLUMNS = [
    "agent", "status", "current", "model", "last_activity", "sessions", "tokens_today",
    "cost_today", "activity",
]  # fmt: skip
THEMES = ("auto", "light", "dark")


class FleetGrid(anywidget.AnyWidget):
    """Every agent of a fleet as a row: status, what it does now, spend, recent activity.

    Click a row to select an agent (`grid.selected`); `grid.sessions()` shows its sessions.
    """

    _esm = _module("grid.js")
    _css = HERE / "grid.css"
    _agents = traitlets.Bytes(b"").tag(sync=True)
    _gateways: traitlets.List[dict[str, Any]] = traitlets.List().tag(sync=True)
    _alerts: traitlets.List[dict[str, Any]] = traitlets.List().tag(sync=True)
    selected = traitlets.Unicode(None, allow_none=True).tag(sync=True)
    columns = traitlets.List(traitlets.Unicode(), default_value=DEFAULT_COLUMNS).tag(sync=True)
    theme = traitlets.Unicode("auto").tag(sync=True)
    page_size = traitlets.Int(100).tag(sync=True)

    def __init__(
        self, fleet: Fleet, *, columns: list[str] | None = None, theme: str = "auto"
    ) -> None:
        if theme not in THEMES:
            raise ValueError(f"theme must be one of {THEMES}, not {theme!r}")
        unknown = set(columns or []) - set(DEFAULT_COLUMNS)
        if unknown:
            raise ValueError(f"unknown columns {sorted(unknown)}; choose from {DEFAULT_COLUMNS}")
        super().__init__(columns=columns or list(DEFAULT_COLUMNS), theme=theme)
        self._fleet = fleet
        self.refresh()

    def refresh(self) -> bool:
        """Send the agents, gateway status and firing alerts if they changed since the last send."""
        store = self._fleet.store
        with store.snapshot():  # the status bar and the agent cards from one moment
            agents = agents_snapshot(store)
            statuses = gateway_statuses(store)
        gateways = _gateway_status(self._fleet, statuses)
        alerts = [
            {"alert": f.alert, "subject": f.subject, "fired_ms": int(f.fired_at.timestamp() * 1000)}
            for f in self._fleet.firing
        ]
        if (agents, gateways, alerts) == (self._agents, self._gateways, self._alerts):
            return False
        with self.hold_sync():
            self._agents = agents
            self._gateways = gateways
            self._alerts = alerts
        return True

    def sessions(self) -> SessionTable:
        """A table of the selected agent's sessions that follows the selection."""
        table = SessionTable(self._fleet, self.selected)
        traitlets.dlink((self, "selected"), (table, "agent"))
        self._fleet.keep_fresh(table)
        return table

    def __repr__(self) -> str:
        return f"<FleetGrid {len(unpack(self._agents))} agents, selected={self.selected!r}>"

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        bundle = super()._repr_mimebundle_(**kwargs)
        data: dict[str, Any] = (bundle[0] if isinstance(bundle, tuple) else bundle) or {}
        data["text/plain"] = repr(self)
        return bundle if bundle else data

    def _ipython_display_(self) -> None:
        """The live widget, then the agents as a plain HTML table in an output of its own,
        which the grid's CSS hides wherever the widget runs. An export that cannot run it
        (nbconvert HTML, GitHub) shows the table instead of a blank space; in the widget's own
        bundle, a saved widget state would win over it."""
        from IPython.display import display

        bundle = self._repr_mimebundle_()
        data, metadata = bundle if isinstance(bundle, tuple) else (bundle, None)
        display(data, metadata=metadata, raw=True)  # type: ignore[no-untyped-call]
        fallback = {"text/html": _static_html(unpack(self._agents)), "text/plain": ""}
        display(fallback, raw=True)  # type: ignore[no-untyped-call]


class SessionTable(anywidget.AnyWidget):
    """The sessions of one agent (`agent`), newest first."""

    _esm = _module("sessions.js")
    _css = HERE / "grid.css"
    _sessions = traitlets.Bytes(b"").tag(sync=True)
    agent = traitlets.Unicode(None, allow_none=True).tag(sync=True)

    def __init__(self, fleet: Fleet, agent: str | None) -> None:
        super().__init__(agent=agent)
        self._fleet = fleet
        self.refresh()

    @traitlets.observe("agent")
    def _agent_changed(self, change: Any) -> None:
        self.refresh()

    def refresh(self) -> bool:
        snapshot = sessions_snapshot(self._fleet.store, self.agent) if self.agent else b""
        if snapshot == self._sessions:
            return False
        self._sessions = snapshot
        return True

    def __repr__(self) -> str:
        return f"<SessionTable agent={self.agent!r}>"


def _gateway_status(fleet: Fleet, statuses: dict[str, str]) -> list[dict[str, Any]]:
    """Each gateway's line in the status bar: its status as the store holds it (written by its
    feed alone), its server and the client's counters."""
    return [
        {
            "name": name,
            "url": client.url,
            "status": statuses.get(name, "connecting"),
            "protocol": client.protocol,
            "server_version": client.server_version,
            "last_event_ms": int(client.stats.last_event_at * 1000)
            if client.stats.last_event_at
            else None,
            "reconnects": client.stats.reconnects,
            "error": type(client.last_error).__name__ if client.last_error else None,
        }
        for name, client in fleet.clients.items()
    ]


def _static_html(rows: list[dict[str, Any]]) -> str:
    """The agents as a plain HTML table, for frontends that cannot run widgets."""
    names = ("agent", "status", "model", "sessions", "cost today")
    header = "".join(f"<th>{name}</th>" for name in names)
    body = "".join(f"<tr>{''.join(_static_cells(row))}</tr>" for row in rows)
    # grid.css hides it where the widget runs
    return (
        f"<table class='ocnb-static'><thead><tr>{header}</tr></thead><tbody>{body}</tbody></table>"
    )


def _static_cells(row: dict[str, Any]) -> list[str]:
    agent = f"{row.get('emoji') or ''} {row.get('name') or row.get('agent_id')}".strip()
    values = (agent, row.get("status"), row.get("model") or "", row.get("sessions") or 0)
    cells = [f"<td>{html.escape(str(value))}</td>" for value in values]
    cells.append(f"<td>${(row.get('cost_today') or 0):.4f}</td>")
    return cells
