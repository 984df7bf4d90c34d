"""`make backfill` (docs/orchestration.md): Dagster partitions of windows, then the schedule."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import time
import typing as t
from datetime import UTC, datetime
from pathlib import Path

import psutil
import pytest
from e2ekit import (
    CLIENT_ID,
    CLIENT_SECRET,
    COUNTS,
    OWN_PREFIXES,
    ROOT,
    STREAMS,
    Postgres,
    embedded_postgres,
)

from tap_analytics.sandbox import SandboxServer

if t.TYPE_CHECKING:
    from collections.abc import Callable, Iterator

# Several Meltano jobs and Dagster processes a test (minutes): in `make test-full`.
pytestmark = [pytest.mark.e2e, pytest.mark.full]
START, END = "2024-01-01T00:00:00Z", "2024-10-01T00:00:00Z"  # the default plan's bounds
HANG_BOUND = 600  # seconds: a hang detector, not a timing assertion
POLL = 0.05
WINDOW_LINE = re.compile(r"window (\S+) \.\. (\S+): (started|loaded|FAILED)")


@pytest.fixture
def workdir() -> Iterator[Path]:
    """The run's directory, outside pytest's private tmp: embedded PostgreSQL's user reads it."""
    path = Path(tempfile.mkdtemp(prefix="backfill-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def sandbox() -> Iterator[SandboxServer]:
    """A sandbox of the e2e sizes, for one test."""
    with SandboxServer(counts=COUNTS) as server:
        yield server


def backfill(
    sandbox: SandboxServer,
    workdir: Path,
    settings: dict[str, str],
    on_line: Callable[[str], None] = print,
) -> tuple[int, str]:
    """Run `make backfill` on the sandbox; return its exit code and output."""
    env = {k: v for k, v in os.environ.items() if not k.startswith((*OWN_PREFIXES, "BACKFILL_"))}
    env.update(
        {
            "TAP_ANALYTICS_BACKFILL_DIR": str(workdir),
            "TAP_ANALYTICS_BASE_URL": sandbox.base_url,
            "TAP_ANALYTICS_CLIENT_ID": CLIENT_ID,
            "TAP_ANALYTICS_CLIENT_SECRET": CLIENT_SECRET,
            **settings,
        }
    )
    lines = []
    with subprocess.Popen(
        ["make", "--no-print-directory", "backfill"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    ) as child:
        assert child.stdout is not None
        for line in child.stdout:
            lines.append(line)
            on_line(line)
    return child.returncode, "".join(lines)


def windows_of(output: str, outcome: str) -> list[tuple[datetime, datetime]]:
    """The windows the output says started, loaded or failed, in order."""
    return [
        (datetime.fromisoformat(start), datetime.fromisoformat(end))
        for start, end, said in WINDOW_LINE.findall(output)
        if said == outcome
    ]


def loaded_rows(postgres: Postgres, schema: str) -> dict[str, dict[str, datetime]]:
    """Every loaded row's updated_at by id, per table."""
    return {
        table: {
            # target-postgres stores a date-time as a timestamp without time zone, in UTC
            key: updated.replace(tzinfo=UTC)
            for key, updated in postgres.query(f'SELECT id, updated_at FROM "{schema}".{table}')  # noqa: S608
        }
        for table in STREAMS
    }


def embedded_rows(workdir: Path) -> dict[str, dict[str, datetime]]:
    """The loaded rows in the embedded PostgreSQL `make backfill` started by default."""
    with embedded_postgres(workdir / "pgdata") as postgres:
        return loaded_rows(postgres, "analytics")


def served_rows(sandbox: SandboxServer) -> dict[str, dict[str, datetime]]:
    """Every record's updated_at by id, per stream, as the sandbox serves it now."""
    return {
        table: {r["id"]: datetime.fromisoformat(r["updated_at"]) for r in sandbox.records(table)}
        for table in STREAMS
    }


def window_of(query: dict[str, str], bounds: list[tuple[datetime, datetime]]) -> int | None:
    """The window a data request was made for, by its updated_since (None: the schedule's)."""
    since = datetime.fromisoformat(query["updated_since"])
    return next((i for i, (a, b) in enumerate(bounds) if a <= since < b), None)


def test_backfill_loads_every_record_once_with_changes_made_while_it_runs(
    sandbox: SandboxServer, workdir: Path
) -> None:
    changed: list[list[str]] = []

    def change_records(line: str) -> None:
        """Change records when the first window is loaded, then when the next one is."""
        print(line, end="")
        if ": loaded" in line and len(changed) < 2:
            changed.append([r["id"] for s in STREAMS for r in sandbox.update_records(s, count=3)])

    plan = {"BACKFILL_WINDOWS": "4", "BACKFILL_CONCURRENCY": "2", "TAP_ANALYTICS_PAGE_SIZE": "25"}
    code, output = backfill(sandbox, workdir, plan, change_records)
    assert code == 0, output[-3000:]
    assert "backfill: 4 windows, 0 already loaded, up to 2 at once" in output
    bounds = windows_of(output, "started")
    assert len(bounds) == 4
    assert bounds[0] == min(bounds)
    assert [len(ids) for ids in changed] == [3 * len(STREAMS)] * 2
    # Every record once, each in its newest version, the changed ones included.
    assert embedded_rows(workdir) == served_rows(sandbox)
    assert output.count(" OK\n") == len(STREAMS)

    # The first window ran alone; then at most two at once; the schedule after every window.
    spans: dict[int | None, list[float]] = {}
    for entry in sandbox.request_log():
        if entry["path"].startswith("/v1/"):
            window = window_of(entry["query"], sorted(bounds))
            spans.setdefault(window, []).append(entry["time"])
    others = [min(spans[i]) for i in range(1, 4)]
    last = [max(spans[i]) for i in range(4)]
    assert max(spans[0]) < min(others)
    for moment in others:
        assert sum(min(spans[i]) <= moment <= last[i] for i in range(4)) <= 2
    assert min(spans[None]) > max(last)

    # A second run loads no window again; the schedule's run reads only what changed since.
    sandbox.clear_request_log()
    code, again = backfill(sandbox, workdir, plan)
    assert code == 0, again[-3000:]
    assert "backfill: 4 windows, 4 already loaded" in again
    assert not windows_of(again, "started")
    assert again.count(" OK\n") == len(STREAMS)
    data = [e for e in sandbox.request_log() if e["path"].startswith("/v1/")]
    assert all(window_of(e["query"], sorted(bounds)) is None for e in data)
    assert embedded_rows(workdir) == served_rows(sandbox)


def events_since(sandbox: SandboxServer) -> list[datetime]:
    """The updated_since of every events request that started a read (no cursor), in order."""
    return [
        datetime.fromisoformat(entry["query"]["updated_since"])
        for entry in sandbox.request_log()
        if entry["path"] == "/v1/events" and "after" not in entry["query"]
    ]


def test_a_failed_window_is_retried_and_rerun_alone_from_its_own_state(
    sandbox: SandboxServer, workdir: Path, postgres: Postgres, schema: str
) -> None:
    """Into the PostgreSQL that TARGET_POSTGRES_SQLALCHEMY_URL names, not the embedded one."""
    failing = {"kind": "status", "status": 500, "path": "/v1/events", "skip": 2, "times": -1}

    def fail_the_second_window(line: str) -> None:
        """From the second window on, every events request after its first two fails."""
        print(line, end="")
        if ": loaded" in line:
            sandbox.clear_request_log()
            sandbox.add_fault(failing)

    plan = {
        "BACKFILL_WINDOWS": "2",
        "BACKFILL_CONCURRENCY": "1",
        "TAP_ANALYTICS_PAGE_SIZE": "10",
        "TAP_ANALYTICS_MAX_RETRIES": "0",
        "TARGET_POSTGRES_SQLALCHEMY_URL": postgres.sqlalchemy_url,
        "TARGET_POSTGRES_DEFAULT_TARGET_SCHEMA": schema,
    }
    code, output = backfill(sandbox, workdir, plan, fail_the_second_window)
    assert code != 0
    (second,) = windows_of(output, "FAILED")
    assert re.search(r"FAILED in .* \(3 attempts", output), output[-3000:]
    assert "schedule: skipped: backfill not finished: 1 window(s) left" in output
    # Dagster's retries of the window resumed from the bookmark its first attempt saved.
    first_attempt, *retries = events_since(sandbox)
    assert first_attempt == second[0]
    assert len(retries) == 2
    assert all(second[0] < since < second[1] for since in retries)

    sandbox.clear_faults()
    sandbox.clear_request_log()
    code, again = backfill(sandbox, workdir, plan)
    assert code == 0, again[-3000:]
    assert "backfill: 2 windows, 1 already loaded" in again
    assert windows_of(again, "started") == [second]
    assert events_since(sandbox)[0] == retries[-1]
    assert loaded_rows(postgres, schema) == served_rows(sandbox)
    assert not (workdir / "pgdata").exists()


def running_taps() -> list[psutil.Process]:
    """The `tap-analytics` processes under this test (under `make backfill`), not meltano's."""
    taps = []
    for process in psutil.Process().children(recursive=True):
        try:
            command = process.cmdline()[:2]  # the interpreter and the script it runs
        except psutil.NoSuchProcess:
            continue
        if any(Path(part).name == "tap-analytics" for part in command):
            taps.append(process)
    return taps


def wait_for(condition: Callable[[], bool], what: str) -> None:
    """Poll until `condition` holds; fail when it never does (a hang, not a timing claim)."""
    deadline = time.monotonic() + HANG_BOUND
    while not condition():
        assert time.monotonic() < deadline, f"still waiting for {what}"
        time.sleep(POLL)


def test_a_window_killed_mid_run_is_retried_from_its_own_state(
    workdir: Path, postgres: Postgres, schema: str
) -> None:
    """kill -9 of the second window's tap while it reads events; Dagster's retry resumes."""
    # Enough events that the second window's tap checkpoints (STATE every 1,000 records) before
    # its 13th page of 100, which hangs: the kill finds a saved bookmark inside the window.
    pages_before_hang = 12
    hang = {"kind": "hang", "path": "/v1/events", "skip": pages_before_hang, "times": 1}
    killed: list[int] = []

    with SandboxServer(counts={**COUNTS, "events": 4000}) as sandbox:

        def hung_events() -> bool:
            events = [e for e in sandbox.request_log() if e["path"] == "/v1/events"]
            return len(events) > pages_before_hang

        def kill_the_second_windows_tap(line: str) -> None:
            """When the first window is loaded, hang the second's events and kill its tap."""
            print(line, end="")
            if ": loaded" not in line or killed:
                return
            sandbox.clear_request_log()
            sandbox.add_fault(hang)
            wait_for(hung_events, "the second window's hung events request")
            # Records and STATE leave the tap together at checkpoints, and it is blocked in
            # a request: the kill cuts no line, so the target ends on the last whole STATE.
            (tap,) = running_taps()
            tap.kill()
            tap.wait(HANG_BOUND)
            killed.append(tap.pid)
            sandbox.clear_faults()

        plan = {
            "BACKFILL_WINDOWS": "2",
            "BACKFILL_CONCURRENCY": "1",
            "TAP_ANALYTICS_PAGE_SIZE": "100",
            "TARGET_POSTGRES_SQLALCHEMY_URL": postgres.sqlalchemy_url,
            "TARGET_POSTGRES_DEFAULT_TARGET_SCHEMA": schema,
        }
        code, output = backfill(sandbox, workdir, plan, kill_the_second_windows_tap)
        assert code == 0, output[-3000:]
        assert len(killed) == 1
        first, second = windows_of(output, "started")
        assert windows_of(output, "loaded") == [first, second]
        once, twice = (line for line in output.splitlines() if ": loaded in " in line)
        assert "(1 attempt," in once
        assert "(2 attempts," in twice
        # The retry read events from the bookmark the killed run's STATE left in Meltano.
        killed_read, retry, *schedule = events_since(sandbox)
        assert killed_read == second[0]
        assert second[0] < retry < second[1]
        assert schedule
        assert all(since >= second[1] for since in schedule)
        assert "schedule: meltano run done" in output
        # Every record once, in its newest version.
        assert output.count(" OK\n") == len(STREAMS)
        assert loaded_rows(postgres, schema) == served_rows(sandbox)
