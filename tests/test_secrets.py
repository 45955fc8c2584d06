"""Secrets never leak: a full session, then a grep of everything it left behind.

The shared token, the device's private key and every device token the gateway issued must not
appear in any log record (DEBUG included), printed output, repr, exception, DuckDB table, Parquet
file or notebook output.
"""

from __future__ import annotations

import json
import logging
import stat
from pathlib import Path
from typing import Any

import duckdb
import nbformat
import pyarrow.parquet as pq
import pytest
from nbclient import NotebookClient
from support.convergence import runs_finished
from support.targets import Target

import ocnb
from ocnb import AuthError, OcnbError
from ocnb.widgets.snapshot import agents_snapshot, unpack

NOTEBOOKS = sorted((Path(__file__).parents[1] / "notebooks").glob("*.ipynb"))


def device_secrets(home: Path) -> list[str]:
    """The device key (each line of its PEM body) and every device token filed under `home`."""
    key_file, tokens_file = home / "device-key.pem", home / "device-tokens.json"
    found: list[str] = []
    if key_file.exists():
        assert stat.S_IMODE(home.stat().st_mode) == 0o700
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
        found += [line for line in key_file.read_text().splitlines() if "-----" not in line]
    if tokens_file.exists():
        assert stat.S_IMODE(tokens_file.stat().st_mode) == 0o600
        found += [entry["token"] for entry in json.loads(tokens_file.read_text()).values()]
    return found


def leaks(secrets: list[str], texts: list[str]) -> list[str]:
    assert all(len(secret) >= 16 for secret in secrets)  # long enough to be meaningful
    return [text[:200] for text in texts for secret in secrets if secret in text]


def database_dump(path: Path) -> list[str]:
    with duckdb.connect(str(path), read_only=True) as con:
        tables = [row[0] for row in con.execute("SHOW TABLES").fetchall()]
        assert {"agents", "sessions", "events"} <= set(tables)
        return [str(con.table(table).to_arrow_table().to_pylist()) for table in tables]


def test_a_full_session_leaves_no_secret_anywhere(
    target: Target,
    private_environment: Path,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    database = tmp_path / "fleet.duckdb"
    texts: list[str] = []
    with ocnb.connect(target.url, target.token, name="gw", store=database) as fleet:
        client = fleet.clients["gw"]
        with target.driver() as driver:
            key = f"agent:{target.agent_roles()[0]}:secrets"
            run_id = driver.run(key)
        fleet.wait_until(lambda f: runs_finished(f, [run_id]), 90)
        with pytest.raises(OcnbError) as unknown_method:
            fleet.call("no.such.method")
        with pytest.raises(AuthError) as wrong_token:
            ocnb.connect(target.url, target.token[::-1], timeout=30)
        for error in (unknown_method.value, wrong_token.value):
            texts += [str(error), repr(error), repr(error.__dict__)]
        texts += [repr(fleet), fleet._repr_html_(), repr(client), repr(client.credentials)]
        texts += [repr(client.hello), str(client.stats.as_dict()), str(fleet.status)]
        texts += [fleet.agents().to_string(), fleet.sessions().to_string()]
        texts += [fleet.events().to_string(), str(unpack(agents_snapshot(fleet.store)))]
        fleet.store.flush()
        for file in fleet.export_parquet(tmp_path / "export"):
            texts.append(str(pq.read_table(file).to_pylist()))
    texts += database_dump(database)
    texts += [record.getMessage() for record in caplog.records]
    texts += [logging.Formatter().format(record) for record in caplog.records]  # tracebacks too
    texts += list(capsys.readouterr())
    secrets = [target.token, *device_secrets(private_environment)]
    assert len(secrets) >= 3, "no device token was issued: the session did not pair"
    assert texts and not leaks(secrets, texts)


# A first cell that logs everything at DEBUG and records every secret the kernel makes (the
# demo's token and the device tokens it issues); a last one that prints what was recorded.
RECORD_SECRETS = """\
import logging, secrets
logging.basicConfig(level=logging.DEBUG)
_issued, _token_urlsafe = [], secrets.token_urlsafe
def _recorded(nbytes=None):
    _issued.append(_token_urlsafe(nbytes))
    return _issued[-1]
secrets.token_urlsafe = _recorded
"""
PRINT_SECRETS = "import json; print(json.dumps(_issued))"


@pytest.mark.timeout(600)
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[path.stem for path in NOTEBOOKS])
def test_no_notebook_output_shows_a_secret(path: Path, private_environment: Path) -> None:
    notebook = nbformat.read(path, as_version=4)
    notebook.cells.insert(0, nbformat.v4.new_code_cell(RECORD_SECRETS))
    notebook.cells.append(nbformat.v4.new_code_cell(PRINT_SECRETS))
    # the kernel inherits this test's private $OCNB_HOME
    NotebookClient(notebook, timeout=300, resources={"metadata": {"path": path.parent}}).execute()
    *cells, printed = notebook.cells
    secrets = [*json.loads(printed.outputs[0]["text"]), *device_secrets(private_environment)]
    assert secrets, "the notebook made no secret: nothing was checked"
    assert not leaks(secrets, [json.dumps(output) for cell in cells for output in outputs(cell)])


def outputs(cell: Any) -> list[Any]:
    return list(cell.get("outputs", []))
