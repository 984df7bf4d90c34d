"""`make demo` twice: a first run, then an incremental one; nothing is left running."""

from __future__ import annotations

import os
import subprocess
import sys
import typing as t

import psutil
import pytest
from e2ekit import ROOT, STREAMS, Meltano

if t.TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.e2e


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


@pytest.fixture(scope="module")
def demo_runs(meltano_installed: Meltano, tmp_path_factory: pytest.TempPathFactory) -> t.Any:
    """Two demo runs in a row, sharing their .demo directory."""
    assert meltano_installed.runs
    demo_dir = tmp_path_factory.mktemp("demo")
    return demo_dir, run_demo(demo_dir), run_demo(demo_dir)


def test_first_demo_run_loads_everything(demo_runs: t.Any) -> None:
    _, first, _ = demo_runs
    assert "no state yet: this first run extracts every record" in first
    for stream in STREAMS:
        assert f"analytics.{stream}" in first
    assert first.count(" OK\n") == len(STREAMS)
    assert "MISMATCH" not in first


def test_second_demo_run_is_incremental(demo_runs: t.Any) -> None:
    _, _, second = demo_runs
    assert "this run is INCREMENTAL" in second
    assert "data requests to the sandbox carried updated_since" in second
    assert "changed records with their new values (merged on id)" in second
    assert second.count(" OK\n") == len(STREAMS)


def test_demo_stops_what_it_started(demo_runs: t.Any) -> None:
    demo_dir, first, second = demo_runs
    assert "Stopped: sandbox, PostgreSQL." in first
    assert "Stopped: sandbox, PostgreSQL." in second
    assert not (demo_dir / "pgdata" / "postmaster.pid").exists()
    assert left_running(demo_dir) == []
