"""Windows: end_date and incremental.end_value bound the replication key, exclusively."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

import pytest

from tapkit import config_for, run_cli, run_tap, seed_config

STREAMS = ("customers", "sessions", "events", "campaigns")


def instant(value: str) -> datetime:
    return datetime.fromisoformat(value)


def tie_at(records: list[dict], fraction: float) -> str:
    """The first updated_at shared by several records, from `fraction` of the list on."""
    values: list[str] = [r["updated_at"] for r in records]
    counts = Counter(values)
    return next(v for v in values[int(len(values) * fraction) :] if counts[v] > 1)


def before(records: list[dict], end: str) -> list[str]:
    return [r["id"] for r in records if instant(r["updated_at"]) < instant(end)]


def test_records_at_or_after_end_date_are_left_out(sandbox):
    boundary = tie_at(sandbox.records("customers"), 0.5)
    run = run_tap(config_for(sandbox.base_url, end_date=boundary, page_size=20))
    for stream in STREAMS:
        records = sandbox.records(stream)
        expected = before(records, boundary)
        assert run.ids(stream) == expected, stream
        # The last record before the bound is the bookmark (none: no bookmark at all).
        last = next((r["updated_at"] for r in reversed(records) if r["id"] in expected), None)
        assert run.bookmark(stream) == last, stream
    tied = [r for r in sandbox.records("customers") if r["updated_at"] == boundary]
    assert len(tied) > 1
    assert not {r["id"] for r in tied} & set(run.ids("customers"))


def test_a_stream_stops_reading_at_the_first_record_past_the_end(sandbox):
    records = sandbox.records("customers")
    boundary = records[45]["updated_at"]
    position = next(i for i, r in enumerate(records) if r["updated_at"] == boundary)
    run = run_tap(config_for(sandbox.base_url, end_date=boundary, page_size=10))
    assert run.ids("customers") == [r["id"] for r in records[:position]]
    requests = [r for r in sandbox.request_log() if r["path"] == "/v1/customers"]
    pages_read = position // 10 + 1
    # A page is requested once the one before is written: none past the end's page.
    assert len(requests) == pages_read
    assert len(requests) < len(records) // 10


def test_windows_side_by_side_deliver_every_record_exactly_once(sandbox):
    first_boundary = tie_at(sandbox.records("customers"), 0.35)
    second_boundary = tie_at(sandbox.records("events"), 0.7)
    assert instant(first_boundary) < instant(second_boundary)
    windows = [
        config_for(sandbox.base_url, end_date=first_boundary),
        config_for(sandbox.base_url, start_date=first_boundary, end_date=second_boundary),
        config_for(sandbox.base_url, start_date=second_boundary),  # open: the ongoing schedule
    ]
    with ThreadPoolExecutor(len(windows)) as pool:  # one tap process per window, at once
        runs = list(pool.map(run_cli, windows))
    assert [run.returncode for run in runs] == [0, 0, 0], [run.stderr[-500:] for run in runs]
    for stream in STREAMS:
        delivered = Counter(i for run in runs for i in run.ids(stream))
        assert delivered == Counter(r["id"] for r in sandbox.records(stream)), stream
    for boundary, window in ((first_boundary, 1), (second_boundary, 2)):
        for stream in STREAMS:  # ties at a boundary go to the window that starts there
            tied = {r["id"] for r in sandbox.records(stream) if r["updated_at"] == boundary}
            assert tied <= set(runs[window].ids(stream))
    assert any(r["updated_at"] == first_boundary for r in runs[1].records["customers"])
    assert any(r["updated_at"] == second_boundary for r in runs[2].records["events"])


def test_a_finished_window_rerun_with_its_state_reads_no_further(sandbox):
    boundary = tie_at(sandbox.records("customers"), 0.5)
    config = config_for(sandbox.base_url, end_date=boundary)
    first = run_tap(config)
    sandbox.update_records("customers", count=5)  # moved past the end: the next window's
    second = run_tap(config, state=first.last_state)
    bookmark = first.bookmark("customers")
    assert "customers" not in second.records  # those at the bookmark were delivered
    assert second.bookmark("customers") == bookmark


def seed_with(sandbox, **endpoint) -> dict:
    config = seed_config(sandbox.base_url)
    config["resources"][0]["endpoint"].update(endpoint)
    return config


INCREMENTAL = {"cursor_path": "updated_at", "start_param": "updated_since"}


def test_end_value_of_a_declared_resource_and_the_earlier_end_wins(sandbox):
    resource_end = tie_at(sandbox.records("resource"), 0.3)
    tap_end = tie_at(sandbox.records("customers"), 0.6)
    assert instant(resource_end) < instant(tap_end)
    config = seed_with(sandbox, incremental={**INCREMENTAL, "end_value": resource_end})
    run = run_tap({**config, "end_date": tap_end})
    assert run.ids("resource_name") == before(sandbox.records("resource"), resource_end)
    assert run.ids("customers") == before(sandbox.records("customers"), tap_end)
    # A resource's end_value later than end_date: end_date closes the window.
    late = seed_with(sandbox, incremental={**INCREMENTAL, "end_value": "2030-01-01T00:00:00Z"})
    run = run_tap({**late, "end_date": resource_end})
    assert run.ids("resource_name") == before(sandbox.records("resource"), resource_end)


def test_end_date_leaves_a_resource_without_incremental_whole(sandbox):
    boundary = tie_at(sandbox.records("resource"), 0.5)
    run = run_tap({**seed_with(sandbox), "end_date": boundary})
    assert run.ids("resource_name") == [r["id"] for r in sandbox.records("resource")]


@pytest.mark.parametrize(
    ("settings", "words"),
    [
        ({"end_date": "2024-13-01T00:00:00Z"}, ["'end_date'", "RFC 3339"]),
        ({"end_date": "2024-06-01"}, ["'end_date'", "RFC 3339"]),
        (
            {"start_date": "2024-06-01T00:00:00Z", "end_date": "2024-06-01T02:00:00+02:00"},
            ["'end_date'", "later than 'start_date'"],
        ),
        (
            {"start_date": "2024-06-01T00:00:00Z", "end_date": "2024-05-01T00:00:00Z"},
            ["'end_date'", "later than 'start_date'"],
        ),
    ],
)
def test_a_bad_end_date_is_refused_before_any_request(sandbox, settings, words):
    run = run_cli(config_for(sandbox.base_url, **settings))
    assert run.returncode == 1
    for word in words:
        assert word in run.stderr
    assert not sandbox.request_log()


@pytest.mark.parametrize(
    ("incremental", "words"),
    [
        ({"end_value": "soon"}, ["resource_name", "end_value", "RFC 3339"]),
        ({"end_value": 5}, ["resource_name", "end_value"]),
        (
            {"initial_value": "2024-06-01T00:00:00Z", "end_value": "2024-06-01T00:00:00Z"},
            ["resource_name", "end_value must be later than initial_value"],
        ),
    ],
)
def test_a_bad_end_value_is_refused_before_any_request(sandbox, incremental, words):
    run = run_cli(seed_with(sandbox, incremental={**INCREMENTAL, **incremental}))
    assert run.returncode == 1
    for word in words:
        assert word in run.stderr
    assert not sandbox.request_log()


def run_side_by_side(configs: list[dict]) -> list:
    """Run one tap process per config, all at once."""
    with ThreadPoolExecutor(len(configs)) as pool:
        return list(pool.map(run_cli, configs))


def test_windows_sharing_a_tight_rate_limit_slow_down_and_finish(sandbox_factory):
    sandbox = sandbox_factory(rate_limit=15, rate_window=1.0)
    boundary = tie_at(sandbox.records("customers"), 0.5)
    settings = {"page_size": 10, "max_retries": 20}
    runs = run_side_by_side(
        [
            config_for(sandbox.base_url, end_date=boundary, **settings),
            config_for(sandbox.base_url, start_date=boundary, **settings),
        ]
    )
    assert [run.returncode for run in runs] == [0, 0], [run.stderr[-500:] for run in runs]
    for stream in STREAMS:
        delivered = Counter(i for run in runs for i in run.ids(stream))
        assert delivered == Counter(r["id"] for r in sandbox.records(stream)), stream
    served = [r for r in sandbox.request_log() if r["path"].startswith("/v1/")]
    assert len([r for r in served if r["status"] == 200]) > 2 * 15  # more than one budget


def test_one_token_per_client_makes_side_by_side_windows_revoke_each_other(sandbox_factory):
    counts = dict.fromkeys(STREAMS, 1500)
    sandbox = sandbox_factory(counts=counts, one_token_per_client=True)
    boundary = tie_at(sandbox.records("customers"), 0.5)
    runs = run_side_by_side(
        [
            config_for(sandbox.base_url, end_date=boundary, page_size=20),
            config_for(sandbox.base_url, start_date=boundary, page_size=20),
        ]
    )
    rejected = [r for r in sandbox.request_log() if r["status"] == 401]
    assert rejected
    assert any("Access token rejected" in run.stderr for run in runs)


def test_the_guides_sandbox_walk_through_runs_as_written(sandbox_factory, tmp_path):
    guide = Path(__file__).resolve().parents[1] / "docs" / "windows.md"
    (script,) = re.findall(r"```sh\n(.*?)```", guide.read_text(), re.DOTALL)
    sandbox = sandbox_factory(counts=None)  # the sandbox's own defaults, as the guide runs it
    env = {
        **os.environ,
        "SANDBOX_URL": sandbox.base_url,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    }
    result = subprocess.run(
        ["sh", "-e", "-c", script],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    total = sum(n for name, n in sandbox.counts().items() if name != "resource")
    assert result.stdout.splitlines()[-1] == (
        f"{total} delivered, {total} distinct, {total} in the API"
    )
