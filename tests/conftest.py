"""Shared fixtures: a private OCNB_HOME and a clean environment for every test."""

from __future__ import annotations

from pathlib import Path

import pytest

from ocnb.auth import HOME_VARIABLE, PASSWORD_VARIABLE, TOKEN_VARIABLE, URL_VARIABLES


@pytest.fixture(autouse=True)
def private_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own ocnb home and no gateway settings from the outer shell."""
    home = tmp_path / "ocnb-home"
    monkeypatch.setenv(HOME_VARIABLE, str(home))
    for name in (*URL_VARIABLES, TOKEN_VARIABLE, PASSWORD_VARIABLE):
        monkeypatch.delenv(name, raising=False)
    return home
