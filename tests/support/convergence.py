"""Compare the store with the gateway's own truth and list every difference."""

from __future__ import annotations

import math
from typing import Any

import pytest

from ocnb import Fleet, GatewayClient
from support.helpers import fetch_all_sessions, wait_for

TERMINAL = {"done", "failed", "killed", "interrupted", "timeout"}
SESSION_FIELDS = {
    "status": "status",
    "model": "model",
    "input_tokens": "inputTokens",
    "output_tokens": "outputTokens",
    "total_tokens": "totalTokens",
}


def _same(ours: Any, theirs: Any) -> bool:
    if ours is None or (isinstance(ours, float) and math.isnan(ours)):
        return theirs is None
    try:
        if ours != ours:  # pandas NA
            return theirs is None
    except TypeError:
        return theirs is None
    return bool(ours == theirs)


def differences(fleet: Fleet, client: GatewayClient, gateway: str) -> list[str]:
    """Sessions (key, status, model, tokens) and agents (id, model) that disagree."""
    found: list[str] = []
    theirs = {row["key"]: row for row in fetch_all_sessions(client)}
    ours = {
        row["session_key"]: row
        for row in fleet.sessions().to_dict("records")
        if row["gateway"] == gateway
    }
    found += [f"session missing from store: {key}" for key in theirs.keys() - ours.keys()]
    found += [f"session the gateway no longer has: {key}" for key in ours.keys() - theirs.keys()]
    for key in theirs.keys() & ours.keys():
        for column, field in SESSION_FIELDS.items():
            if field in theirs[key] and not _same(ours[key][column], theirs[key][field]):
                found.append(
                    f"{key}.{column}: store {ours[key][column]!r}, gateway {theirs[key][field]!r}"
                )
    their_agents = {a["id"]: a for a in client.call("agents.list")["agents"]}
    our_agents = {
        a["agent_id"]: a for a in fleet.agents().to_dict("records") if a["gateway"] == gateway
    }
    if their_agents.keys() != our_agents.keys():
        found.append(f"agents: store {sorted(our_agents)}, gateway {sorted(their_agents)}")
    for agent_id in their_agents.keys() & our_agents.keys():
        model = their_agents[agent_id].get("model", {}).get("primary")
        ours_model = our_agents[agent_id]["model"]
        if ours_model != model:
            found.append(f"agent {agent_id} model: store {ours_model!r}, gateway {model!r}")
    return found


def usage_differences(fleet: Fleet, client: GatewayClient, gateway: str) -> list[str]:
    """Per-agent token and cost totals of live sessions against the gateway's `sessions.usage`
    for every session and all time."""
    params: dict[str, object] = {"startDate": "2000-01-01", "endDate": "2100-01-01", "limit": 10**5}
    if (client.protocol or 4) >= 4:
        params["agentScope"] = "all"
    payload = client.call("sessions.usage", params)
    theirs: dict[str, tuple[int, float]] = {}
    for entry in payload.get("sessions", []):
        usage = entry.get("usage") or {}
        tokens, cost = theirs.get(entry["agentId"], (0, 0.0))
        theirs[entry["agentId"]] = (
            tokens + (usage.get("totalTokens") or 0),
            cost + (usage.get("totalCost") or 0.0),
        )
    ours_frame = fleet.sql(
        "SELECT s.agent_id, sum(p.total_tokens)::BIGINT AS tokens, sum(p.cost_usd) AS cost "
        "FROM spend p JOIN sessions s USING (gateway, session_key) "
        "WHERE p.gateway = $gateway AND NOT s.deleted GROUP BY ALL",
        gateway=gateway,
    )
    ours = {
        row["agent_id"]: (int(row["tokens"] or 0), float(row["cost"] or 0.0))
        for row in ours_frame.to_dict("records")
    }
    found = []
    for agent_id in theirs.keys() | ours.keys():
        mine, real = ours.get(agent_id, (0, 0.0)), theirs.get(agent_id, (0, 0.0))
        if mine[0] != real[0] or not math.isclose(mine[1], real[1], rel_tol=1e-6, abs_tol=1e-9):
            found.append(f"agent {agent_id}: store {mine}, gateway {real}")
    return found


def converged(fleet: Fleet, client: GatewayClient, gateway: str, timeout: float = 60) -> None:
    """Wait until the store and the gateway agree; fail with the differences if they never do."""
    last: list[str] = []

    def agree() -> bool:
        nonlocal last
        last = differences(fleet, client, gateway)
        return not last

    try:
        wait_for(agree, timeout, "the store to converge")
    except pytest.fail.Exception:
        pytest.fail(f"store and gateway still differ: {last[:10]}")


def runs_finished(fleet: Fleet, run_ids: list[str]) -> bool:
    runs = fleet.runs()
    ours = runs[runs["run_id"].isin(run_ids)]
    return len(ours) == len(run_ids) and set(ours["status"]) <= TERMINAL


def wait_runs_finished(
    fleet: Fleet, client: GatewayClient, run_ids: list[str], timeout: float = 90
) -> None:
    """Wait until every run is terminal in the store; fail with our runs and the gateway's
    sessions for them if they never are."""
    try:
        fleet.wait_until(lambda f: runs_finished(f, run_ids), timeout)
    except TimeoutError:
        runs = fleet.runs()
        ours = runs[runs["run_id"].isin(run_ids)][["run_id", "session_key", "status"]]
        keys = set(ours["session_key"])
        fields = ("key", "status", "hasActiveRun", "activeRunId", "abortedLastRun")
        theirs = [
            {field: row.get(field) for field in fields}
            for row in fetch_all_sessions(client)
            if row["key"] in keys
        ]
        pytest.fail(
            f"runs not finished within {timeout:g} s: store {ours.to_dict('records')}, "
            f"gateway sessions {theirs}"
        )
