"""Alerts: rules over the store fire once per subject, resolve, are recorded and shown."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from support.helpers import wait_for

import ocnb
from ocnb.alerts import Firing

OVER_BUDGET = """
SELECT agent_id AS subject, sum(cost_usd) AS usd FROM usage
WHERE ts >= now() - INTERVAL 1 HOUR GROUP BY agent_id HAVING sum(cost_usd) > $budget
"""


@pytest.fixture
def fleet() -> Iterator[ocnb.Fleet]:
    with ocnb.demo(seed=7, paused=True) as fleet:
        assert fleet.demo_gateway is not None
        fleet.demo_gateway.fast_forward(10 * 60)
        fleet.catch_up()
        yield fleet


def test_an_sql_budget_fires_once_per_agent_over_it(fleet: ocnb.Fleet) -> None:
    spend = fleet.sql("SELECT agent_id, sum(cost_usd) AS usd FROM usage GROUP BY 1")
    budget = float(spend["usd"].median())
    over = set(spend.loc[spend["usd"] > budget, "agent_id"])
    fired: list[Firing] = []
    alert = fleet.alert(OVER_BUDGET.replace("$budget", repr(budget)), fired.append, name="budget")
    wait_for(lambda: {f.subject for f in fired} == over, 15, "every agent over budget to fire")
    wait_for(lambda: alert.checks >= 3, 30, "more checks")  # later checks fire nothing new
    assert sorted(f.subject for f in fired) == sorted(over)
    assert all(f.detail["usd"] > budget for f in fired)
    recorded = fleet.alerts(firing=True)
    assert set(recorded["subject"]) == over and set(recorded["alert"]) == {"budget"}


def test_a_predicate_resolves_when_it_stops_matching_and_shows_in_the_grid(
    fleet: ocnb.Fleet,
) -> None:
    stuck = {"atlas", "beacon"}
    alert = fleet.alert(lambda f: sorted(stuck), name="stuck")
    grid = fleet.grid()
    wait_for(lambda: set(alert.firing) == stuck, 15, "both to fire")
    wait_for(lambda: grid.refresh() or {a["subject"] for a in grid._alerts} == stuck, 15)
    stuck.discard("beacon")
    fleet.catch_up()  # wake the checks by a change in the store
    fleet.demo_gateway.fast_forward(5)  # type: ignore[union-attr]
    wait_for(lambda: set(alert.firing) == {"atlas"}, 15, "beacon to resolve")
    fleet.store.flush()
    rows = fleet.alerts().set_index("subject")
    assert (
        rows.loc["beacon", "resolved_at"] is not None and not rows["resolved_at"].isna()["beacon"]
    )
    assert rows["resolved_at"].isna()["atlas"]


def test_silence_fires_on_the_timer_without_any_change(fleet: ocnb.Fleet) -> None:
    silence = fleet.alert(
        "SELECT 'fleet' AS subject WHERE (SELECT max(received_at) FROM events) "
        "< now() - INTERVAL 2 SECOND",
        name="silence",
    )
    wait_for(lambda: "fleet" in silence.firing, 20, "the quiet paused fleet to fire")


def test_a_broken_rule_reports_its_error_and_the_others_keep_working(fleet: ocnb.Fleet) -> None:
    broken = fleet.alert("SELECT nope FROM nowhere", name="broken")
    works = fleet.alert(lambda f: True, name="works")
    wait_for(lambda: broken.last_error is not None and "fleet" in works.firing, 15)
    assert "nowhere" in broken.last_error
    with pytest.raises(ValueError, match="exists"):
        fleet.alert(lambda f: True, name="works")
