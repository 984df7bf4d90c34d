"""Run one contender once: wall, its CPU and peak RSS (wait4), the server's CPU, its output."""

from __future__ import annotations

import os
import signal
import subprocess
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from harness.paths import PYTHON, REPO

if TYPE_CHECKING:
    from harness.sandbox import Sandbox

RUN_TIMEOUT_S = 900.0
SPAWN = Path(__file__).with_name("spawn.py")
# Set in some shells and CI images; they would make stdout unbuffered (a syscall per write)
# and stop .pyc files being written, which no user's Meltano run has by default.
UNSET = ("PYTHONUNBUFFERED", "PYTHONDONTWRITEBYTECODE")
SERVER_BOUND = 0.9  # server CPU at this share of the wall time: the server is the bottleneck


class Message(msgspec.Struct):
    """The fields of a Singer message the harness checks; the rest is parsed and skipped."""

    type: str
    stream: str | None = None


decode_message = msgspec.json.Decoder(Message).decode


@dataclass
class Run:
    """The outcome of one run of one contender."""

    contender: str
    round: int
    wall_s: float
    user_s: float
    sys_s: float
    peak_rss_mb: float
    server_cpu_s: float
    exit_code: int
    records: dict[str, int] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)
    error: str = ""

    @property
    def cpu_s(self) -> float:
        """Return the contender's CPU seconds, user + system."""
        return self.user_s + self.sys_s

    @property
    def server_bound(self) -> bool:
        """Tell whether the server was busy for most of the run, so it set the pace."""
        return self.server_cpu_s >= SERVER_BOUND * self.wall_s

    def as_dict(self) -> dict[str, Any]:
        """Return the run as plain JSON data."""
        return {**asdict(self), "cpu_s": self.cpu_s, "server_bound": self.server_bound}


def child_env() -> dict[str, str]:
    """Return this process's environment without the variables in UNSET."""
    return {key: value for key, value in os.environ.items() if key not in UNSET}


def execute(cmd: list[str], out: Path, err: Path, sandbox: Sandbox) -> Run:
    """Run cmd with stdout to a file; measure it and the server over the same interval."""
    rusage = out.with_name(out.name + ".rusage.json")
    rusage.unlink(missing_ok=True)
    spawn = [str(PYTHON), "-S", str(SPAWN), str(rusage), *cmd]
    with out.open("wb") as stdout, err.open("wb") as stderr:
        server_before = sandbox.cpu_seconds()
        proc = subprocess.Popen(
            spawn, stdout=stdout, stderr=stderr, cwd=REPO, env=child_env(), start_new_session=True
        )
        try:
            proc.wait(timeout=RUN_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        server = sandbox.cpu_seconds() - server_before
    if not rusage.exists():  # killed: report the time-out as the exit code says
        return Run("", 0, RUN_TIMEOUT_S, 0.0, 0.0, 0.0, server, proc.returncode)
    measured = msgspec.json.decode(rusage.read_bytes())
    return Run(
        "",
        0,
        measured["wall_s"],
        measured["user_s"],
        measured["sys_s"],
        measured["peak_rss_mb"],
        server,
        measured["exit_code"],
    )


def count_records(out: Path) -> Counter[str]:
    """Count the RECORD messages per stream in a Singer output file (every line must parse)."""
    counts: Counter[str] = Counter()
    with out.open("rb") as lines:
        for line in lines:
            message = decode_message(line)
            if message.type == "RECORD":
                counts[message.stream or ""] += 1
    return counts


def last_json_line(err: Path) -> dict[str, Any]:
    """Return the last stderr line if it is a JSON object (the floor's summary)."""
    lines = err.read_bytes().strip().splitlines()
    try:
        summary = msgspec.json.decode(lines[-1]) if lines else {}
    except msgspec.DecodeError:
        return {}
    return summary if isinstance(summary, dict) else {}


def mismatch(records: dict[str, int], expected: dict[str, int]) -> str:
    """Describe the streams whose RECORD count differs from the sandbox's."""
    wrong = [
        f"{stream}: {records.get(stream, 0)}/{want}"
        for stream, want in expected.items()
        if records.get(stream, 0) != want
    ]
    extra = sorted(set(records) - set(expected))
    wrong += [f"{stream}: unexpected" for stream in extra]
    return ("RECORD counts differ from the sandbox's: " + ", ".join(wrong)) if wrong else ""


def run_once(
    contender: str,
    cmd: list[str],
    expected: dict[str, int] | None,
    sandbox: Sandbox,
    *,
    keep_output: bool = False,
) -> Run:
    """Run a contender, then verify its exit code and (unless expected is None) its records.

    Its stdout and stderr go to CONTENDER.out and .err in the sandbox's work directory.
    """
    out, err = sandbox.workdir / f"{contender}.out", sandbox.workdir / f"{contender}.err"
    run = execute(cmd, out, err, sandbox)
    run.contender = contender
    if expected is not None:
        try:
            run.records = dict(count_records(out))
        except msgspec.DecodeError as exc:
            run.error = f"stdout is not Singer JSON lines: {exc}"
    if not keep_output:
        out.unlink()
    run.summary = last_json_line(err)
    if run.exit_code != 0:
        tail = err.read_text(errors="replace")[-1500:]
        run.error = f"exit code {run.exit_code}: {tail}"
    if expected is not None:
        run.error = run.error or mismatch(run.records, expected)
    return run
