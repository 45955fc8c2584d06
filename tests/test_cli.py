"""`python -m ocnb demo` on a fresh checkout: serves, is followed, and never prints the token."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def test_demo_serves_a_fleet_that_watch_follows(private_environment: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "ocnb", "demo", "--port", "0", "--watch", "--duration", "4"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    lines = result.stdout.splitlines()
    assert any("8 agents, 60 sessions" in line and line.startswith("live:") for line in lines)
    assert any(line.startswith("[live] agents:") and "sessions" in line for line in lines)
    token = (private_environment / "demo-token").read_text().strip()
    assert token
    assert token not in result.stdout + result.stderr


def test_demo_report_shows_a_fleet_table_and_exits_zero_when_live(
    private_environment: Path,
) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "ocnb", "demo", "--report", "3", "--speed", "20", "--seed", "5"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    tables = result.stdout.split("[live] agents:")[1:]
    assert len(tables) >= 2  # redrawn, not printed once
    header, *rows = tables[-1].splitlines()[1:9]
    assert header.split()[:2] == ["agent", "status"]
    assert {row.split()[1] for row in rows} <= {"working", "idle", "error", "offline"}
    token = (private_environment / "demo-token").read_text().strip()
    assert token not in result.stdout + result.stderr


def test_watch_reports_a_wrong_token_clearly() -> None:
    from ocnb.demo_gateway import DemoGateway

    with DemoGateway() as gateway:
        result = subprocess.run(
            [sys.executable, "-m", "ocnb", "watch", gateway.url, "--duration", "1"],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "OPENCLAW_GATEWAY_TOKEN": "wrong-token"},
        )
    assert result.returncode == 1
    assert "AUTH_TOKEN_MISMATCH" in result.stderr
    assert "wrong-token" not in result.stderr + result.stdout
