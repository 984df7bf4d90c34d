"""Run one contender once: wall time, peak RSS, and the RECORD messages it wrote."""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from harness.paths import REPO

if TYPE_CHECKING:
    from pathlib import Path

RUN_TIMEOUT_S = 900.0


@dataclass
class Run:
    """The outcome of one run of one contender."""

    contender: str
    round: int
    wall_s: float
    peak_rss_mb: float
    exit_code: int
    records: dict[str, int] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)
    error: str = ""

    def as_dict(self) -> dict[str, Any]:
        """Return the run as plain JSON data."""
        return asdict(self)


def execute(cmd: list[str], out: Path, err: Path) -> tuple[float, float, int]:
    """Run cmd with stdout to a file; return (wall seconds, peak RSS in MB, exit code)."""
    with out.open("wb") as stdout, err.open("wb") as stderr:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=stdout, stderr=stderr, cwd=REPO)
        timer = threading.Timer(RUN_TIMEOUT_S, proc.kill)
        timer.start()
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        timer.cancel()
    proc.returncode = os.waitstatus_to_exitcode(status)
    return wall, usage.ru_maxrss / 1024, proc.returncode


def count_records(out: Path) -> Counter[str]:
    """Count the RECORD messages per stream in a Singer output file."""
    counts: Counter[str] = Counter()
    with out.open("rb") as lines:
        for line in lines:
            if b'"RECORD"' not in line:
                continue
            message = json.loads(line)
            if message.get("type") == "RECORD":
                counts[message["stream"]] += 1
    return counts


def last_json_line(err: Path) -> dict[str, Any]:
    """Return the last stderr line if it is a JSON object (the floor's summary)."""
    lines = err.read_text(errors="replace").strip().splitlines()
    try:
        summary = json.loads(lines[-1]) if lines else {}
    except json.JSONDecodeError:
        return {}
    return summary if isinstance(summary, dict) else {}


def shortfall(records: dict[str, int], expected: dict[str, int]) -> str:
    """Describe the streams that delivered fewer records than expected."""
    short = [
        f"{stream}: {records.get(stream, 0)}/{want}"
        for stream, want in expected.items()
        if records.get(stream, 0) < want
    ]
    return ("fewer records than expected: " + ", ".join(short)) if short else ""


def stderr_tail(err: Path, chars: int = 1500) -> str:
    """Return the end of a stderr file."""
    return err.read_text(errors="replace")[-chars:]


def run_once(
    contender: str, cmd: list[str], expected: dict[str, int], workdir: Path, round_no: int
) -> Run:
    """Run a contender, then verify its exit code and record counts."""
    out, err = workdir / f"{contender}.out", workdir / f"{contender}.err"
    wall, rss, code = execute(cmd, out, err)
    records = dict(count_records(out))
    out.unlink()
    run = Run(contender, round_no, wall, rss, code, records, last_json_line(err))
    if code != 0:
        run.error = f"exit code {code}: {stderr_tail(err)}"
    else:
        run.error = shortfall(records, expected)
    return run
