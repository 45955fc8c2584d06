"""The README's main job, exactly as written: `scripts/demo` and `scripts/demo --headless`."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

from support.helpers import wait_for

ROOT = Path(__file__).parent.parent
DEMO = ROOT / "scripts" / "demo"


def test_headless_form_reports_a_live_fleet_and_exits_zero(private_environment: Path) -> None:
    result = subprocess.run(
        [DEMO, "--headless", "--report", "3"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "[live] agents:" in result.stdout
    assert "It stops after 3 s." in result.stdout and "Ctrl-C" not in result.stdout
    assert result.stdout.rstrip().endswith("verdict: the fleet stayed live throughout (exit 0)")


def test_main_job_serves_jupyterlab_on_the_quickstart(private_environment: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    token = os.urandom(8).hex()
    server = subprocess.Popen(
        [DEMO, "--no-browser", f"--port={port}", f"--IdentityProvider.token={token}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"

    def landing() -> str | None:
        """Where JupyterLab's address leads (following redirects), once it answers."""
        headers = {"Authorization": f"token {token}"}
        request = urllib.request.Request(f"{base}/", headers=headers)  # noqa: S310 - local
        try:
            with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 - local
                return str(response.url) if response.status == 200 else None
        except (urllib.error.URLError, ConnectionError):
            return None

    try:
        wait_for(lambda: landing() is not None, 120, "JupyterLab to answer")
        assert landing() == f"{base}/lab/tree/01-quickstart.ipynb"
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(30)
