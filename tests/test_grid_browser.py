"""The grid in a real browser: JupyterLab headless on loopback, driven by Debian's Chromium."""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from support.helpers import wait_for
from support.realgateway import AGENTS, RealGateway, free_port

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
QUICKSTART = Path(__file__).parent.parent / "notebooks" / "01-quickstart.ipynb"
ARTIFACTS = Path(os.environ.get("OCNB_ARTIFACTS", Path(__file__).parent.parent / ".artifacts"))
CELLS = [
    "import ocnb\n"
    "fleet = ocnb.demo(seed=1, speed=4, run_rate=0.4, churn=False)\n"
    "grid = fleet.grid()\n"
    "grid",
    "import time\ntime.sleep(30)",
    "print('SELECTED', grid.selected)",
]
BIG_CELLS = [
    "import ocnb\n"
    "fleet = ocnb.demo(agents=2000, sessions=20000, run_rate=0.01, churn=False)\n"
    "grid = fleet.grid()\n"
    "grid",
]


def notebook(cells: list[str]) -> dict[str, Any]:
    return {
        "cells": [
            {
                "cell_type": "code",
                "metadata": {},
                "source": source,
                "outputs": [],
                "execution_count": None,
            }
            for source in cells
        ],
        "metadata": {
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }


FRONTENDS = {  # frontend -> (server module, notebook path in the URL)
    "jupyterlab-4": ("jupyterlab", "lab/tree/grid.ipynb"),
    "notebook-7": ("notebook", "notebooks/grid.ipynb"),
}


@pytest.fixture(scope="module", params=sorted(FRONTENDS))
def lab(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """JupyterLab or Notebook 7 on a free loopback port with the grid notebook; yields its URL."""
    module, path = FRONTENDS[request.param]
    if not Path(CHROMIUM).exists():
        message = "Chromium is not installed (scripts/test installs Debian's chromium)"
        if os.environ.get("OCNB_REQUIRE_BROWSER") == "1":
            pytest.fail(message)
        pytest.skip(message)
    root = tmp_path_factory.mktemp("lab")
    (root / "grid.ipynb").write_text(json.dumps(notebook(CELLS)))
    (root / "big.ipynb").write_text(json.dumps(notebook(BIG_CELLS)))
    shutil.copy(QUICKSTART, root / QUICKSTART.name)
    token, port = secrets.token_hex(16), free_port()
    env = {
        **os.environ,
        "JUPYTER_CONFIG_DIR": str(root / ".jupyter"),
        "JUPYTERLAB_SETTINGS_DIR": str(root / ".settings"),
        "JUPYTERLAB_WORKSPACES_DIR": str(root / ".workspaces"),
        "OCNB_HOME": str(root / ".ocnb"),
    }
    command = [
        sys.executable, "-m", module, "--no-browser", "--allow-root",
        f"--ServerApp.port={port}", "--ServerApp.ip=127.0.0.1", f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root}",
    ]  # fmt: skip
    with (root / "lab.log").open("wb") as log:
        process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        import urllib.request

        def answers() -> bool:
            try:
                with urllib.request.urlopen(
                    f"http://127.0.0.1:{port}/api?token={token}", timeout=2
                ):
                    return True
            except OSError:
                return process.poll() is not None

        wait_for(answers, 60, "JupyterLab to start")
        assert process.poll() is None, (root / "lab.log").read_text()[-2000:]
        yield f"http://127.0.0.1:{port}/{path}?token={token}"
    finally:
        process.terminate()
        process.wait(20)


def test_the_grid_renders_refreshes_while_a_cell_sleeps_sorts_filters_and_selects(lab: str) -> None:
    with browser_page() as page:
        try:
            run_grid_session(page, lab)
        finally:
            screenshot(page, lab, "grid")


def test_two_thousand_agents_page_without_freezing_the_browser(lab: str) -> None:
    # `reset`: JupyterLab would otherwise reopen the first test's notebook beside this one.
    url = lab.replace("grid.ipynb?", "big.ipynb?reset&")
    with browser_page() as page:
        try:
            page.goto(url)
            page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
            run_cell(page, 0)
            rows = page.locator(".ocnb-grid tbody tr[data-agent]")
            rows.first.wait_for(timeout=90_000)
            assert rows.count() == 100
            assert page.locator(".ocnb-count").inner_text() == "2000 agents"
            assert page.locator(".ocnb-page").inner_text() == "1/20"
            page.locator(".ocnb-next").click()
            assert page.locator(".ocnb-page").inner_text() == "2/20"
            page.locator(".ocnb-filter").fill("zephyr")
            wait_for(lambda: 0 < rows.count() < 100, 10, "the filter over 2,000 agents")
        finally:
            screenshot(page, lab, "grid-2000")


@pytest.mark.timeout(300)
def test_the_quickstart_run_all_shows_a_fleet_at_work_until_it_is_closed(lab: str) -> None:
    """ "Run All" on the tutorial a newcomer opens first: the grid it leaves stays live and
    busy, and after `fleet.close()` its status bar says closed."""
    with browser_page() as page:
        try:
            page.goto(lab.replace("grid.ipynb?", f"{QUICKSTART.name}?reset&"))
            page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
            run_all(page)
            prompts = page.locator(".jp-Notebook .jp-CodeCell .jp-InputPrompt")
            wait_for(
                # text, not rendered text: a cell scrolled out of view renders nothing
                lambda: all(re.search(r"\[\d+\]", text) for text in prompts.all_text_contents()),
                120,
                "every cell to have run",
            )
            body = page.locator(".ocnb-grid table.ocnb-agents tbody")
            changes, working, last = 0, False, body.inner_html()
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and not (changes >= 2 and working):
                page.wait_for_timeout(250)
                now = body.inner_html()
                changes += now != last
                last = now
                working = working or "working" in chips(page).values()
            assert changes >= 2 and working, f"{changes} changes, working chip seen: {working}"
            page.locator(".ocnb-grid").first.scroll_into_view_if_needed()
            screenshot(page, lab, "quickstart")

            add_cell(page, "fleet.close()")
            gateway = page.locator(".ocnb-statusbar .ocnb-gw").first
            wait_for(
                lambda: gateway.get_attribute("data-status") == "closed", 30, "the closed status"
            )
            closed = rows_drawn(body)
            page.wait_for_timeout(2_000)
            assert rows_drawn(body) == closed  # no more refreshes
        finally:
            screenshot(page, lab, "quickstart-closed")


@pytest.mark.gateway
@pytest.mark.timeout(300)
def test_two_real_gateways_are_grouped_in_the_grid(
    lab: str, real_gateways: dict[str, RealGateway], tmp_path: Path
) -> None:
    """The real v4 and v3 gateways in one fleet: one group of rows per gateway."""
    secrets_file = tmp_path / "gateways.json"  # the cell names the file, never a token
    secrets_file.write_text(
        json.dumps({f"v{g.protocol}": [g.url, g.token] for g in real_gateways.values()})
    )
    secrets_file.chmod(0o600)
    cells = [
        "import json, pathlib\nimport ocnb\n"
        f"gateways = json.loads(pathlib.Path({str(secrets_file)!r}).read_text())\n"
        "fleet = ocnb.connect(*gateways['v4'], name='v4')\n"
        "fleet.add_gateway(*gateways['v3'], name='v3')\n"
        "fleet.wait_until_live(120)\n"
        "fleet.grid()"
    ]
    put_notebook(lab, "two.ipynb", notebook(cells))
    with browser_page() as page:
        try:
            page.goto(lab.replace("grid.ipynb?", "two.ipynb?reset&"))
            page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
            run_cell(page, 0)
            groups = page.locator(".ocnb-grid tr.ocnb-group")
            wait_for(lambda: groups.count() == 2, 150, "a group of rows per gateway")
            assert groups.all_inner_texts() == ["v3", "v4"]
            rows = page.locator(".ocnb-grid tbody tr[data-agent]")
            assert rows.count() == 2 * len(AGENTS)
            statuses = page.locator(".ocnb-statusbar .ocnb-gw")
            wait_for(
                lambda: [s.get_attribute("data-status") for s in statuses.all()] == ["live"] * 2,
                30,
                "both gateways live in the status bar",
            )
        finally:
            screenshot(page, lab, "grid-two-real-gateways")


def put_notebook(lab: str, name: str, content: dict[str, Any]) -> None:
    """Save a notebook into the server's root through its contents API."""
    import urllib.request

    parts = urlsplit(lab)
    token = dict(parse_qsl(parts.query))["token"]
    request = urllib.request.Request(  # noqa: S310 - the local test server
        f"{parts.scheme}://{parts.netloc}/api/contents/{name}",
        data=json.dumps({"type": "notebook", "content": content}).encode(),
        headers={"Authorization": f"token {token}", "Content-Type": "application/json"},
        method="PUT",
    )
    with urllib.request.urlopen(request, timeout=10):  # noqa: S310 - the local test server
        pass


def rows_drawn(body: Any) -> str:
    """The rows as drawn by the last refresh (the browser's own "… ago" ticker aside)."""
    return re.sub(r">[^<>]* ago<", "><", body.inner_html())


def run_all(page: Any) -> None:
    """Run > Run All Cells, from the menu bar (JupyterLab and Notebook 7 share it); again if
    the kernel was not ready to take it (the first code cell's prompt still `[ ]`)."""
    prompt = page.locator(".jp-Notebook .jp-CodeCell .jp-InputPrompt").first
    for _ in range(12):
        page.locator(".lm-MenuBar-item", has_text="Run").first.click()
        page.locator(".lm-Menu-item", has_text="Run All Cells").first.click()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            if "[ ]" not in prompt.inner_text():
                return
            page.wait_for_timeout(100)
    pytest.fail("Run All Cells never started")


def add_cell(page: Any, source: str) -> None:
    """A new code cell at the end of the notebook, typed in and run."""
    cells = page.locator(".jp-Notebook .jp-Cell")
    count = cells.count()
    cells.nth(count - 1).click()  # the last cell, here a rendered Markdown cell
    page.keyboard.press("Escape")
    page.keyboard.press("b")
    wait_for(lambda: cells.count() == count + 1, 10, "the new cell")
    cells.nth(count).locator(".jp-InputArea-editor").click()
    page.keyboard.type(source)
    run_cell(page, count)


@contextlib.contextmanager
def browser_page() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser.new_page(viewport={"width": 1400, "height": 1000})
        finally:
            browser.close()


def screenshot(page: Any, lab: str, name: str) -> None:
    frontend = "notebook-7" if "/notebooks/" in lab else "jupyterlab-4"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}-{frontend}.png"), full_page=True)


def run_cell(page: Any, index: int) -> None:
    """Run one cell; press again if the kernel was not ready to take it (prompt still `[ ]`)."""
    cell = page.locator(".jp-Notebook .jp-Cell").nth(index)
    prompt = cell.locator(".jp-InputPrompt")
    for _ in range(12):
        cell.locator(".jp-InputArea-editor").click()
        page.keyboard.press("Shift+Enter")
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            if "[ ]" not in prompt.inner_text():
                return
            page.wait_for_timeout(100)
    pytest.fail(f"cell {index} never started to run")


def run_grid_session(page: Any, url: str) -> None:
    page.goto(url)
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
    run_cell(page, 0)
    rows = page.locator(".ocnb-grid tbody tr[data-agent]")
    rows.first.wait_for(timeout=60_000)
    wait_for(lambda: rows.count() == 8, 30, "all 8 demo agents")

    run_cell(page, 1)  # sleeps for 30 s: the grid must keep changing meanwhile
    sleeping = page.locator(".jp-Notebook .jp-Cell").nth(1).locator(".jp-InputPrompt")
    wait_for(lambda: "[*]" in sleeping.inner_text(), 20, "the sleep cell to run")
    first = chips(page)
    wait_for(
        lambda: chips(page) != first and "[*]" in sleeping.inner_text(),
        25,
        "a status chip to change during the sleep",
    )
    colours = {
        chip.evaluate("e => getComputedStyle(e).backgroundColor")
        for chip in page.locator(".ocnb-chip").all()
    }
    assert len(colours) >= 2  # working and idle at least

    names = [row.get_attribute("data-agent") for row in rows.all()]
    assert names == sorted(names)  # by agent, ascending, to begin with
    page.locator(".ocnb-grid th[data-column='agent']").click()  # the same column again: descending
    names = [row.get_attribute("data-agent") for row in rows.all()]
    assert names == sorted(names, reverse=True)
    page.locator(".ocnb-grid th[data-column='sessions']").click()
    counts = [int(row.locator("td").nth(5).inner_text()) for row in rows.all()]
    assert counts == sorted(counts)
    page.locator(".ocnb-filter").fill("cipher")
    wait_for(lambda: rows.count() == 1, 10, "the filter to leave one agent")
    page.locator(".ocnb-filter").fill("")
    wait_for(lambda: rows.count() == 8, 10, "the filter to clear")

    wait_for(lambda: "[*]" not in sleeping.inner_text(), 40, "the sleep to end")
    page.locator(".ocnb-grid tbody tr[data-agent='beacon']").click()
    wait_for(
        lambda: page.locator(".ocnb-grid tr.ocnb-selected").count() == 1,
        10,
        "the row to be selected",
    )
    run_cell(page, 2)
    output = page.locator(".jp-Notebook .jp-Cell").nth(2).locator(".jp-OutputArea")
    wait_for(lambda: "SELECTED" in output.inner_text(), 30, "the selection printed by the kernel")
    assert "SELECTED beacon" in output.inner_text()


def chips(page: Any) -> dict[str, str]:
    """Each agent's status chip, as the browser shows it now."""
    found = {}
    for row in page.locator(".ocnb-grid tbody tr[data-agent]").all():
        chip = row.locator(".ocnb-chip")
        found[row.get_attribute("data-agent")] = (
            chip.get_attribute("data-status") if chip.count() else None
        )
    return found
