"""Starting the sandbox: on a free port, and a starter that fails at once when it cannot listen."""

from __future__ import annotations

import subprocess
import sys
import typing as t
from pathlib import Path

import psutil
import pytest
import requests

if t.TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = pytest.mark.sandbox
SANDBOX = str(Path(sys.executable).with_name("tap-analytics-sandbox"))
BOUND = 120  # seconds: a bound for a hung start only; no result depends on it


@pytest.fixture
def files(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """Where a sandbox writes its URL and its pid; the sandbox is stopped after the test."""
    url, pid = tmp_path / "sandbox.url", tmp_path / "sandbox.pid"
    yield url, pid
    if pid.exists():
        process = psutil.Process(int(pid.read_text()))
        process.terminate()
        process.wait(BOUND)


def start(*arguments: str) -> subprocess.CompletedProcess[str]:
    """Run tap-analytics-sandbox and wait for it to return."""
    command = [SANDBOX, *arguments]
    return subprocess.run(command, capture_output=True, text=True, timeout=BOUND, check=False)


def test_background_returns_once_the_sandbox_listens(files: tuple[Path, Path]) -> None:
    url_file, pid_file = files
    done = start(
        "--background", "--records", "7", "--port-file", str(url_file), "--pid-file", str(pid_file)
    )
    assert done.returncode == 0, done.stderr
    url, pid = url_file.read_text().strip(), pid_file.read_text().strip()
    assert done.stdout == f"sandbox listening on {url} (pid {pid})\n"
    # Asked once, no retry: it listens already.
    counts = requests.get(f"{url}/_sandbox/counts", timeout=BOUND).json()
    assert counts["customers"] == 7


@pytest.mark.parametrize("mode", [["--background"], []], ids=["background", "foreground"])
def test_a_sandbox_that_cannot_listen_fails_its_starter_with_the_reason(
    files: tuple[Path, Path], busy_port: int, mode: list[str]
) -> None:
    url_file, pid_file = files
    done = start(
        *mode, "--port", str(busy_port), "--port-file", str(url_file), "--pid-file", str(pid_file)
    )
    assert done.returncode == 1
    (reason,) = done.stderr.splitlines()
    assert reason.startswith(f"tap-analytics-sandbox: cannot listen on 127.0.0.1:{busy_port} ")
    assert "address already in use" in reason
    assert reason.endswith("give another --port, or 0 for a free one")
    assert done.stdout == ""
    assert not url_file.exists()
    assert not pid_file.exists()


def test_log_without_background_is_refused(tmp_path: Path) -> None:
    done = start("--log", str(tmp_path / "sandbox.log"))
    assert done.returncode == 2
    assert "--log is the output of a --background sandbox: add --background" in done.stderr
