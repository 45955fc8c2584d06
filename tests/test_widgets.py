"""The grid's Python side: snapshots, the refresher's coalescing, the static fallback."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest.mock import patch

import pytest
from support.helpers import wait_for

import ocnb
from ocnb.demo_gateway import DemoGateway
from ocnb.ops import Upsert
from ocnb.widgets import FleetGrid, Refresher
from ocnb.widgets.grid import HERE
from ocnb.widgets.snapshot import agents_snapshot, unpack

NOTEBOOKS = Path(__file__).parent.parent / "notebooks"


@pytest.fixture
def quiet_fleet() -> Iterator[ocnb.Fleet]:
    with ocnb.demo(seed=2, run_rate=0, churn=False) as fleet:
        yield fleet


def test_the_grid_shows_every_agent_card(quiet_fleet: ocnb.Fleet) -> None:
    grid = quiet_fleet.grid()
    rows = unpack(grid._agents)
    assert [row["agent_id"] for row in rows] == sorted(quiet_fleet.agents()["agent_id"])
    assert {"status", "current_session", "cost_today", "activity"} <= set(rows[0])
    assert all(len(row["activity"]) == 30 for row in rows)
    assert grid._gateways[0]["status"] == "live"


def test_nothing_is_sent_when_nothing_changed(quiet_fleet: ocnb.Fleet) -> None:
    grid = FleetGrid(quiet_fleet)
    assert grid.refresh() is False


def test_a_thousand_store_changes_make_a_handful_of_sends(quiet_fleet: ocnb.Fleet) -> None:
    grid = quiet_fleet.grid(refresh_hz=4)
    refresher = quiet_fleet.keep_fresh(grid)  # already kept: the refresher driving it
    sends_before = refresher.sends
    started = time.monotonic()
    for n in range(1000):
        row = {
            "gateway": "demo",
            "agent_id": "atlas",
            "name": f"Atlas {n}",
            "removed": False,
            "version": 10**15 + n,
        }
        quiet_fleet.store.submit([Upsert("agents", row)])
    quiet_fleet.store.flush()
    wait_for(
        lambda: unpack(grid._agents)[0]["name"] == "Atlas 999", 10, "the last change to arrive"
    )
    elapsed = time.monotonic() - started
    sends = refresher.sends - sends_before
    assert 1 <= sends <= 4 * elapsed + 2  # at most refresh_hz a second, plus the edges


def test_the_refresher_survives_a_failing_widget() -> None:
    class Broken:
        def refresh(self) -> bool:
            raise RuntimeError("boom")

    class Counting:
        calls = 0

        def refresh(self) -> bool:
            self.calls += 1
            return True

    refresher = Refresher(4)
    broken, counting = Broken(), Counting()
    refresher.add(broken)
    refresher.add(counting)
    refresher.changed()
    wait_for(lambda: counting.calls >= 1)
    assert "boom" in (refresher.last_error or "")
    refresher.stop()


def test_the_static_fallback_is_an_html_table_and_repr_stays_short(quiet_fleet: ocnb.Fleet) -> None:
    grid = quiet_fleet.grid()
    shown: list[dict[str, Any]] = []
    with patch("IPython.display.display", lambda data, **_: shown.append(data)):
        grid._ipython_display_()
    widget, fallback = shown
    assert "application/vnd.jupyter.widget-view+json" in widget and "text/html" not in widget
    assert fallback["text/html"].count("<tr>") == 1 + 8
    assert "table.ocnb-static { display: none; }" in (HERE / "grid.css").read_text()
    assert len(repr(grid)) < 80


def test_a_snapshot_of_2000_agents_stays_small() -> None:
    gateway = DemoGateway(agents=2000, sessions=20_000, run_rate=0, churn=False)
    with gateway, ocnb.connect(gateway.url, gateway.token, timeout=120) as fleet:
        snapshot = agents_snapshot(fleet.store)
    assert len(unpack(snapshot)) == 2000
    assert len(snapshot) < 2000 * 400  # bytes: about 300 per agent


def test_bad_options_are_refused(quiet_fleet: ocnb.Fleet) -> None:
    with pytest.raises(ValueError, match="theme"):
        quiet_fleet.grid(theme="neon")
    with pytest.raises(ValueError, match="unknown columns"):
        quiet_fleet.grid(columns=["agent", "mood"])


def test_the_sparkline_counts_each_agents_recent_events() -> None:
    # history=False: the played history begins 30 minutes ago, at the window's edge
    with ocnb.demo(seed=4, speed=10, run_rate=0.5, churn=False, history=False) as fleet:
        fleet.wait_until(lambda f: len(f.runs()) >= 5, 30)
        cursor = fleet.store.cursor()
        cursor.execute("BEGIN")  # both reads see the same committed state
        rows = {row["agent_id"]: row for row in unpack(agents_snapshot(fleet.store))}
        logged = fleet.sql(
            "SELECT agent_id, count(*) AS n FROM events WHERE agent_id IS NOT NULL GROUP BY 1"
        )
        cursor.execute("COMMIT")
    for record in logged.to_dict("records"):
        assert sum(rows[record["agent_id"]]["activity"]) == record["n"]


def test_an_html_export_of_an_executed_notebook_shows_the_agents(tmp_path: Path) -> None:
    """nbconvert keeps the widget's state and picks the widget view, which a static page
    cannot run: the fallback output beside it is what the page shows."""
    import nbformat
    from nbconvert import HTMLExporter
    from nbconvert.preprocessors import ExecutePreprocessor

    notebook = nbformat.v4.new_notebook()
    notebook.cells = [
        nbformat.v4.new_code_cell(
            "import ocnb\nfleet = ocnb.demo(seed=2, run_rate=0, churn=False)\nfleet.grid()"
        ),
        nbformat.v4.new_code_cell("fleet.close()"),
    ]
    ExecutePreprocessor(timeout=120).preprocess(notebook, {"metadata": {"path": str(tmp_path)}})
    assert "widgets" in notebook.metadata  # the state was saved, as `nbconvert --execute` does
    page, _ = HTMLExporter().from_notebook_node(notebook)
    assert 'class="ocnb-static"' in page
    for name in ("Atlas", "Beacon", "Harbor"):
        assert f"{name}</td>" in page


def test_the_demos_first_snapshot_shows_a_fleet_at_work() -> None:
    """The played history: tokens today and a sparkline for most agents on the first frame."""
    with ocnb.demo(seed=0) as fleet:
        rows = unpack(agents_snapshot(fleet.store))
        minutes_into_today = fleet.sql("SELECT epoch(now() - current_date) / 60 AS m")["m"][0]
    # right after midnight most of the played history is yesterday's
    spent = "tokens_today" if minutes_into_today > 31 else "tokens_total"
    assert sum(row[spent] > 0 for row in rows) > len(rows) / 2
    assert sum(sum(row["activity"]) > 0 for row in rows) > len(rows) / 2


@pytest.mark.parametrize("path", sorted(NOTEBOOKS.glob("*.ipynb")), ids=lambda p: p.name)
def test_the_tutorials_carry_no_saved_widget_state(path: Path) -> None:
    """A saved state restores the widgets' code and CSS as they were when it was saved, and
    anywidget lets it replace the package's own (seen: the grid's column widths undone)."""
    notebook = json.loads(path.read_text())
    assert "widgets" not in notebook["metadata"]
    for cell in notebook["cells"]:
        for output in cell.get("outputs", []):
            assert "application/vnd.jupyter.widget-view+json" not in output.get("data", {})
