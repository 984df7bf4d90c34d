"""The tap piped straight into another Singer target (target-jsonl), no Meltano involved."""

from __future__ import annotations

import json
import math
import re
import subprocess
import typing as t
from datetime import datetime

import pytest
from e2ekit import BIN, CLIENT_ID, CLIENT_SECRET, ROOT, STREAMS, Meltano

from tap_analytics.sandbox import SandboxServer

if t.TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.e2e
COUNTS = {"customers": 120, "sessions": 90, "events": 150, "campaigns": 25}
TARGET_JSONL = ROOT / ".meltano" / "loaders" / "target-jsonl" / "venv" / "bin" / "target-jsonl"
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")


def normal(value: object) -> object:
    """A value in a form that compares equal however the tap and the target wrote it."""
    if isinstance(value, str) and TIMESTAMP.match(value):
        return datetime.fromisoformat(value)
    if isinstance(value, float | int) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, dict):
        return {k: normal(v) for k, v in value.items()}
    if isinstance(value, list):
        return [normal(v) for v in value]
    return value


def same(left: object, right: object) -> bool:
    """Equal after normalising, floats to 1e-9."""
    left, right = normal(left), normal(right)
    if isinstance(left, float) and isinstance(right, float):
        return math.isclose(left, right, rel_tol=1e-9)
    return left == right


@pytest.fixture(scope="module")
def piped(meltano_installed: Meltano, tmp_path_factory: pytest.TempPathFactory) -> t.Any:
    """Run `tap-analytics --config tap.json | target-jsonl --config target.json`."""
    assert TARGET_JSONL.is_file(), "meltano install provides target-jsonl"
    tmp = tmp_path_factory.mktemp("pipe")
    out = tmp / "out"
    out.mkdir()
    with SandboxServer(counts=COUNTS) as sandbox:
        tap_config: dict[str, t.Any] = {"base_url": sandbox.base_url, "client_id": CLIENT_ID}
        tap_config |= {"client_secret": CLIENT_SECRET, "page_size": 50}
        (tmp / "tap.json").write_text(json.dumps(tap_config))
        target_config = {"destination_path": str(out), "do_timestamp_file": False}
        (tmp / "target.json").write_text(json.dumps(target_config))
        command = (
            f'"{BIN / "tap-analytics"}" --config tap.json'
            f' | "{TARGET_JSONL}" --config target.json > state.json'
        )
        result = subprocess.run(
            ["bash", "-o", "pipefail", "-c", command],
            cwd=tmp,
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, result.stderr[-4000:]
        yield out, {name: sandbox.records(name) for name in STREAMS}


def written(out: Path, stream: str) -> list[dict[str, t.Any]]:
    """The records target-jsonl wrote for one stream."""
    lines = (out / f"{stream}.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines if line.strip()]


@pytest.mark.parametrize("stream", STREAMS)
def test_pipe_writes_every_record_once(piped: t.Any, stream: str) -> None:
    out, records = piped
    ids = [r["id"] for r in written(out, stream)]
    assert len(ids) == len(set(ids)) == COUNTS[stream]
    assert set(ids) == {r["id"] for r in records[stream]}


@pytest.mark.parametrize("stream", STREAMS)
def test_pipe_writes_the_sandbox_values(piped: t.Any, stream: str) -> None:
    out, records = piped
    by_id = {r["id"]: r for r in records[stream]}
    for record in written(out, stream):
        expected = by_id[record["id"]]
        assert "updated_at" in record
        for key, value in record.items():
            assert same(value, expected.get(key)), (stream, record["id"], key)
