"""orchestrate/plan.py: the windows `make backfill` makes of the BACKFILL_* variables."""

from __future__ import annotations

import itertools
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from orchestrate.plan import PlanError, plan_from_env

ROOT = Path(__file__).resolve().parents[1]


def test_the_default_plan_is_the_sandbox_year_in_three_windows() -> None:
    plan = plan_from_env({})
    assert [w.env() for w in plan.windows] == [
        {"TAP_ANALYTICS_START_DATE": a, "TAP_ANALYTICS_END_DATE": b}
        for a, b in [
            ("2024-01-01T00:00:00Z", "2024-04-01T08:00:00Z"),
            ("2024-04-01T08:00:00Z", "2024-07-01T16:00:00Z"),
            ("2024-07-01T16:00:00Z", "2024-10-01T00:00:00Z"),
        ]
    ]
    assert plan.concurrency == 2
    assert plan.schedule_start == datetime(2024, 10, 1, tzinfo=UTC)
    assert plan.windows[0].state_id == "backfill-20240101T000000Z-20240401T080000Z"


def test_windows_share_their_bounds_and_cover_the_range() -> None:
    env = {"BACKFILL_START": "2024-01-01T00:00:00+02:00", "BACKFILL_END": "2024-01-02T00:00:00Z"}
    plan = plan_from_env({**env, "BACKFILL_WINDOWS": "7", "BACKFILL_CONCURRENCY": "3"})
    windows = plan.windows
    assert len(windows) == 7
    assert windows[0].start == datetime(2023, 12, 31, 22, tzinfo=UTC)
    assert windows[-1].end == datetime(2024, 1, 2, tzinfo=UTC)
    assert all(a.end == b.start for a, b in itertools.pairwise(windows))
    assert len({w.key for w in windows}) == 7
    assert plan.window(windows[3].key) == windows[3]


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"BACKFILL_START": "last year"}, "BACKFILL_START='last year' is not a date-time"),
        ({"BACKFILL_END": "2024-06-01T00:00:00"}, "has no time zone: end it with Z"),
        ({"BACKFILL_END": "2023-06-01T00:00:00Z"}, "must be later than BACKFILL_START"),
        ({"BACKFILL_WINDOWS": "0"}, "BACKFILL_WINDOWS='0' is not a positive whole number"),
        ({"BACKFILL_CONCURRENCY": "two"}, "BACKFILL_CONCURRENCY='two' is not a positive"),
        ({"BACKFILL_WINDOWS": "100000000"}, "shorter than a second: use fewer"),
    ],
)
def test_a_bad_variable_is_refused_with_its_name_and_fix(env: dict[str, str], message: str) -> None:
    with pytest.raises(PlanError, match=message):
        plan_from_env(env)


def test_make_backfill_refuses_a_bad_variable_in_one_line_before_starting_anything(
    tmp_path: Path,
) -> None:
    env = {"PATH": "", "BACKFILL_WINDOWS": "-1", "TAP_ANALYTICS_BACKFILL_DIR": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "backfill.py")],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert result.stdout == "backfill: BACKFILL_WINDOWS='-1' is not a positive whole number\n"
    assert result.stderr == ""
    assert list(tmp_path.iterdir()) == []
