"""ocnb.analysis: frames that agree with SQL over the raw store."""

from __future__ import annotations

from collections.abc import Iterator

import pandas as pd
import pytest

import ocnb
from ocnb import analysis, plots


@pytest.fixture(scope="module")
def fleet() -> Iterator[ocnb.Fleet]:
    with ocnb.demo(seed=11, speed=20, run_rate=0.5, churn=False) as fleet:
        fleet.wait_until(
            lambda f: (f.runs()["status"] == "failed").sum() >= 1 and len(f.runs()) >= 20, 60
        )
        fleet.demo_gateway.pause()  # keep the numbers still while the tests compare them
        fleet.store.flush()
        yield fleet


def test_runs_have_durations_and_match_the_runs_table(fleet: ocnb.Fleet) -> None:
    frame = analysis.runs(fleet)
    count = fleet.sql("SELECT count(*) AS n FROM runs").iloc[0]["n"]
    assert len(frame) >= count  # runs only grow while the fleet is live
    finished = frame.dropna(subset=["ended_at", "started_at"])
    assert (finished["duration_ms"] >= 0).all()
    agent = frame["agent_id"].iloc[0]
    assert set(analysis.runs(fleet, agent=agent)["agent_id"]) == {agent}


def test_activity_buckets_add_up_to_the_event_log(fleet: ocnb.Fleet) -> None:
    cursor = fleet.store.cursor()
    cursor.execute("BEGIN")
    frame = analysis.activity(fleet, every="1min", by="event")
    total = fleet.sql("SELECT count(*) AS n FROM events").iloc[0]["n"]
    cursor.execute("COMMIT")
    assert frame["events"].sum() == total
    assert str(frame["bucket"].dtype).startswith("datetime64")


def test_token_usage_and_cost_match_the_usage_table(fleet: ocnb.Fleet) -> None:
    cursor = fleet.store.cursor()
    cursor.execute("BEGIN")
    tokens = analysis.token_usage(fleet, every="1h", by="model")
    spend = analysis.cost(fleet, every="1h", by="agent")
    raw = fleet.sql("SELECT sum(total_tokens)::BIGINT AS t, sum(cost_usd) AS c FROM usage").iloc[0]
    cursor.execute("COMMIT")
    assert tokens["total_tokens"].sum() == raw["t"] > 0
    assert spend["cost_usd"].sum() == pytest.approx(raw["c"])
    last = spend.groupby("agent")["cumulative_usd"].max()
    assert last.sum() == pytest.approx(raw["c"])


def test_errors_group_failed_runs_by_message(fleet: ocnb.Fleet) -> None:
    frame = analysis.errors(fleet)
    failed = fleet.sql("SELECT count(*) AS n FROM runs WHERE status = 'failed'").iloc[0]["n"]
    assert frame["runs"].sum() == failed >= 1
    assert (frame["first_seen"] <= frame["last_seen"]).all()


def test_a_session_timeline_is_in_order(fleet: ocnb.Fleet) -> None:
    key = analysis.runs(fleet)["session_key"].iloc[0]
    timeline = analysis.session_timeline(fleet, key)
    assert len(timeline) > 0
    assert timeline["occurred_at"].is_monotonic_increasing
    assert "start" in set(timeline["what"])


def test_bad_arguments_are_refused_clearly(fleet: ocnb.Fleet) -> None:
    with pytest.raises(ValueError, match="by="):
        analysis.token_usage(fleet, by="mood")
    with pytest.raises(ValueError, match="every="):
        analysis.activity(fleet, every="soon")


def test_plots_draw_what_the_frames_hold(fleet: ocnb.Fleet) -> None:
    import matplotlib.pyplot as plt

    tokens = analysis.token_usage(fleet, every="1h")
    ax = plots.token_usage(tokens)
    assert sum(bar.get_height() for bar in ax.patches) == tokens["total_tokens"].sum()
    runs = analysis.runs(fleet)
    ax = plots.runs(runs)
    assert sum(bar.get_width() for bar in ax.patches) == len(runs)
    errors = analysis.errors(fleet)
    assert len(plots.errors(errors).patches) == min(len(errors), plots.TOP_ERRORS)
    spend = analysis.cost(fleet)
    lines = plots.cost(spend).get_lines()
    assert {line.get_label() for line in lines} == set(spend["agent"])
    assert plots.activity(analysis.activity(fleet).iloc[0:0]).get_title() == "Events (no data yet)"
    plt.close("all")


def test_plots_give_each_of_many_agents_a_colour_of_its_own() -> None:
    """matplotlib's default cycle repeats after ten groups: two agents would look like one."""
    agents = [f"agent-{n:02d}" for n in range(14)]
    frame = pd.DataFrame(
        {"bucket": pd.Timestamp("2026-12-01", tz="UTC"), "agent": agents, "events": 1}
    )
    ax = plots.activity(frame)
    assert len({patch.get_facecolor() for patch in ax.patches}) == 14
    assert len(set(plots.palette(40))) == 40
