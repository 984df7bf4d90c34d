"""docs/windows.md with Meltano: concurrent window jobs with their own state, then the schedule."""

from __future__ import annotations

import json
import re
import subprocess
import typing as t
from datetime import datetime

import pytest
from e2ekit import COUNTS, ROOT, STREAMS, Meltano, Postgres, project_lock

if t.TYPE_CHECKING:
    from tap_analytics.sandbox import SandboxServer

pytestmark = pytest.mark.e2e
GUIDE = ROOT / "docs" / "windows.md"


def guide_block(containing: str) -> str:
    """The guide's ```text block that holds `containing`, as written."""
    blocks: list[str] = re.findall(r"```text\n(.*?)```", GUIDE.read_text(), re.DOTALL)
    (block,) = [b for b in blocks if containing in b]
    return block


def shell(meltano: Meltano, script: str) -> str:
    """Run the guide's commands in the project, with the pipeline's environment."""
    with project_lock():  # the guide's jobs run side by side, but no other command beside them
        result = subprocess.run(
            ["sh", "-e", "-c", script],
            cwd=ROOT,
            env=meltano.env,
            capture_output=True,
            text=True,
            check=False,
        )
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    return result.stdout + result.stderr


def windows_of(script: str) -> dict[str, tuple[datetime, datetime]]:
    """Each state id of the guide's window commands, with its start and end."""
    pattern = (
        r"TAP_ANALYTICS_START_DATE=(\S+) TAP_ANALYTICS_END_DATE=(\S+) "
        r"meltano el tap-analytics target-postgres --state-id (\S+)"
    )
    return {
        name: (datetime.fromisoformat(start), datetime.fromisoformat(end))
        for start, end, name in re.findall(pattern, script)
    }


def bookmarks(meltano: Meltano, state_id: str) -> dict[str, datetime]:
    """The bookmark of every stream in a Meltano state."""
    state = json.loads(meltano("state", "get", state_id))
    return {
        name: datetime.fromisoformat(stream["replication_key_value"])
        for name, stream in state["singer_state"]["bookmarks"].items()
    }


def table_rows(postgres: Postgres, schema: str, table: str) -> tuple[int, int]:
    """Rows and distinct ids of a table."""
    sql = f'SELECT count(*), count(DISTINCT id) FROM "{schema}"."{table}"'  # noqa: S608
    return postgres.query(sql)[0]


@pytest.mark.full  # the slowest e2e case (--durations=0): make test-full
def test_windows_run_as_concurrent_jobs_then_the_schedule_takes_over(
    pipeline: Meltano, e2e_sandbox: SandboxServer, postgres: Postgres, schema: str
) -> None:
    backfill = guide_block("meltano el")
    windows = windows_of(backfill)
    # The first window alone (it creates the tables), then the others at once.
    assert len(windows) == backfill.count(" &\n") + 1 == 3
    pipeline("state", "list")  # creates the system database, which concurrent jobs cannot
    listed = shell(pipeline, backfill)
    for name, (start, end) in windows.items():
        assert name in listed.split(), listed[-6000:]
        for stream, bookmark in bookmarks(pipeline, name).items():
            assert start <= bookmark < end, (name, stream)
    last_end = max(end for _, end in windows.values())
    for table in STREAMS:
        records = e2e_sandbox.records(table)
        backfilled = sum(datetime.fromisoformat(r["updated_at"]) < last_end for r in records)
        assert table_rows(postgres, schema, table) == (backfilled, backfilled), table

    schedule = guide_block("meltano run tap-analytics target-postgres\n")
    assert f"TAP_ANALYTICS_START_DATE={last_end:%Y-%m-%dT%H:%M:%SZ} meltano run" in schedule
    shell(pipeline, schedule)
    for table in STREAMS:
        assert table_rows(postgres, schema, table) == (COUNTS[table], COUNTS[table]), table

    # Changes after the backfill reach the tables through the schedule's state.
    changed = {r["id"]: r["name"] for r in e2e_sandbox.update_records("customers", count=4)}
    shell(pipeline, schedule)
    sql = f'SELECT id, name FROM "{schema}"."customers" WHERE id = ANY(%s)'  # noqa: S608
    assert dict(postgres.query(sql, (list(changed),))) == changed
    assert table_rows(postgres, schema, "customers") == (COUNTS["customers"],) * 2

    listed = shell(pipeline, guide_block("meltano state clear") + "meltano state list\n")
    assert not set(windows) & set(listed.split())


def test_state_id_suffix_keeps_a_window_state_of_its_own(pipeline: Meltano) -> None:
    """The guide's `meltano run --state-id-suffix` command, for a job in its own project copy."""
    (command,) = re.findall(r"`(meltano run --state-id-suffix [^`]+)`", GUIDE.read_text())
    name, (start, end) = next(iter(windows_of(guide_block("meltano el")).items()))
    assert name in command
    window = {
        "TAP_ANALYTICS_START_DATE": f"{start:%Y-%m-%dT%H:%M:%SZ}",
        "TAP_ANALYTICS_END_DATE": f"{end:%Y-%m-%dT%H:%M:%SZ}",
    }
    pipeline(*command.split()[1:], extra=window)
    state_id = f"ci:tap-analytics-to-target-postgres:{name}"
    for stream, bookmark in bookmarks(pipeline, state_id).items():
        assert start <= bookmark < end, stream
