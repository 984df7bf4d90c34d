"""`make demo` twice: a first run, then an incremental one; nothing is left running."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING

import psutil
import pytest
from e2ekit import ROOT, STREAMS, SandboxControl, embedded_postgres

from tap_analytics.sandbox import SandboxServer

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.e2e
CHANGED_TABLES = ("customers", "campaigns")  # the demo changes records of these


def run_demo(demo_dir: Path) -> str:
    """Run the demo with its files in `demo_dir`; return its output."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MELTANO_", "TAP_", "TARGET_"))}
    env["TAP_ANALYTICS_DEMO_DIR"] = str(demo_dir)
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "demo.py")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    return result.stdout


def left_running(demo_dir: Path) -> list[str]:
    """Processes still using the demo's files."""
    found = []
    for process in psutil.process_iter(["cmdline"]):
        cmdline = " ".join(process.info["cmdline"] or [])
        if str(demo_dir) in cmdline:
            found.append(cmdline)
    return found


@dataclass
class DemoRuns:
    """Two demo runs in a row sharing one directory, and what was left after them."""

    directory: Path
    first: str
    second: str
    postmaster_pid_left: bool
    processes_left: list[str]


@pytest.fixture(scope="module")
def demo_runs(tmp_path_factory: pytest.TempPathFactory) -> DemoRuns:
    """Run the demo twice; observe what is left running right after."""
    directory = tmp_path_factory.mktemp("demo")
    first, second = run_demo(directory), run_demo(directory)
    pid_left = (directory / "pgdata" / "postmaster.pid").exists()
    return DemoRuns(directory, first, second, pid_left, left_running(directory))


def table_report(output: str) -> dict[str, tuple[int, int, int]]:
    """The demo's table of rows in PostgreSQL, sandbox records and rows written, for OK rows."""
    found = re.findall(r"^\s+analytics\.(\w+)\s+(\d+)\s+(\d+)\s+(\d+)\s+OK$", output, re.MULTILINE)
    return {table: (int(rows), int(sandbox), int(run)) for table, rows, sandbox, run in found}


def test_first_demo_run_loads_everything(demo_runs: DemoRuns) -> None:
    first = demo_runs.first
    assert "no state yet: this first run extracts every record" in first
    assert "MISMATCH" not in first
    report = table_report(first)
    assert set(report) == set(STREAMS)
    for table, (rows, sandbox, written) in report.items():
        assert rows == sandbox == written > 0, table


def test_second_demo_run_is_incremental(demo_runs: DemoRuns) -> None:
    second = demo_runs.second
    assert "this run is INCREMENTAL" in second
    assert "data requests to the sandbox carried updated_since" in second
    assert "changed records with their new values (merged on id)" in second
    report = table_report(second)
    assert set(report) == set(STREAMS)
    for table, (rows, sandbox, written) in report.items():
        assert rows == sandbox, table
        assert written < rows, f"{table}: an incremental run rewrote every row"
    for table in CHANGED_TABLES:
        assert report[table][2] >= 1, table


def test_postgres_holds_the_sandbox_records_after_both_runs(demo_runs: DemoRuns) -> None:
    """Read both ends again, independently of the demo's own checks."""
    with SandboxServer(data_dir=demo_runs.directory / "sandbox") as server:
        sandbox = SandboxControl(server.base_url)
        expected = {table: sandbox.records(table) for table in STREAMS}
    with embedded_postgres(demo_runs.directory / "pgdata") as postgres:
        ids = {table: set(postgres.column_by_id("analytics", table, "id")) for table in STREAMS}
        names = {
            table: postgres.column_by_id("analytics", table, "name") for table in CHANGED_TABLES
        }
    for table in STREAMS:
        assert ids[table] == {record["id"] for record in expected[table]}, table
    for table in CHANGED_TABLES:
        assert names[table] == {record["id"]: record["name"] for record in expected[table]}
        changed = [r for r in expected[table] if (r["name"] or "").startswith("Updated")]
        assert changed, f"the second run changed {table} in the sandbox"


def test_demo_stops_what_it_started(demo_runs: DemoRuns) -> None:
    assert "Stopped: sandbox, PostgreSQL." in demo_runs.first
    assert "Stopped: sandbox, PostgreSQL." in demo_runs.second
    assert not demo_runs.postmaster_pid_left
    assert demo_runs.processes_left == []
