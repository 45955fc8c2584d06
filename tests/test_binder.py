"""The Binder environment, checked the way repo2docker would build it (no Docker here): a clean
virtualenv from `binder/`, then the quickstart notebook executed in it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).parent.parent
BINDER = ROOT / "binder"


@pytest.mark.binder
@pytest.mark.timeout(900)
def test_binder_environment_runs_the_quickstart(tmp_path: Path) -> None:
    runtime = (BINDER / "runtime.txt").read_text().strip()
    assert runtime == f"python-{sys.version_info.major}.{sys.version_info.minor}", (
        "run this test with the Python binder/runtime.txt names"
    )
    venv = tmp_path / "binder-env"
    subprocess.run([sys.executable, "-m", "venv", venv], check=True)
    bin_dir = venv / "bin"
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    env.pop("VIRTUAL_ENV", None)

    def run(*command: str | Path) -> None:
        subprocess.run(command, cwd=ROOT, env=env, check=True, timeout=600)

    run(bin_dir / "pip", "install", "-q", "-r", BINDER / "requirements.txt")
    run("bash", BINDER / "postBuild")
    executed = tmp_path / "quickstart.ipynb"
    run(
        bin_dir / "jupyter", "nbconvert", "--to", "notebook", "--execute",
        "--ExecutePreprocessor.timeout=120", "--output", executed,
        ROOT / "notebooks" / "01-quickstart.ipynb",
    )  # fmt: skip
    notebook = nbformat.read(executed, as_version=4)
    outputs = [output for cell in notebook.cells for output in cell.get("outputs", [])]
    assert outputs and not [o for o in outputs if o.get("output_type") == "error"]
