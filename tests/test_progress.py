"""What a person reads on stderr: short, no false errors, progress and a summary per stream."""

from __future__ import annotations

import json
import logging
import re
import typing as t
from datetime import datetime

import pytest

from tap_analytics import progress, sync
from tap_analytics.errors import SyncInterruptedError
from tapkit import config_for, run_cli, run_tap

STREAMS = ("customers", "sessions", "events", "campaigns")
PROGRESS = re.compile(
    r"Syncing '(?P<stream>\w+)': (?P<records>[\d,]+) records so far, [\d,]+ records/s, "
    r"bookmark (?P<bookmark>\S+)$"
)
SUMMARY = re.compile(
    r"Synced '(?P<stream>\w+)': (?P<records>[\d,]+) records in [\d.]+ s, "
    r"bookmark (?P<bookmark>\S+)$"
)
FAILED = re.compile(r"Sync of '(?P<stream>\w+)' failed after (?P<records>[\d,]+) records in ")


def levels(stderr: str, *names: str) -> list[str]:
    """The stderr lines logged at any of the named levels."""
    return [line for line in stderr.splitlines() if any(f"| {name}" in line for name in names)]


def metric_points(stderr: str) -> list[dict[str, t.Any]]:
    """The SDK's METRIC lines, parsed."""
    return [
        json.loads(line.split("METRIC: ", 1)[1])
        for line in stderr.splitlines()
        if "METRIC: " in line
    ]


def test_metric_lines_are_off_by_default(sandbox):
    run = run_cli(config_for(sandbox.base_url))
    assert run.returncode == 0, run.stderr
    assert metric_points(run.stderr) == []
    assert "METRIC" not in run.stderr


def test_log_metrics_shows_the_sdk_metric_lines(sandbox):
    run = run_cli(config_for(sandbox.base_url, log_metrics=True))
    assert run.returncode == 0, run.stderr
    points = metric_points(run.stderr)
    records: dict[str, int] = {}
    for point in points:
        if point["metric"] == "record_count":
            stream = point["tags"]["stream"]
            records[stream] = records.get(stream, 0) + point["value"]
    assert records == {stream: len(run.records[stream]) for stream in STREAMS}
    durations = [p for p in points if p["metric"] == "http_request_duration"]
    assert {p["tags"]["stream"] for p in durations} == set(STREAMS)


def test_test_mode_logs_no_error_for_its_planned_stop(sandbox):
    run = run_cli(config_for(sandbox.base_url), "--test")
    assert run.returncode == 0, run.stderr
    assert levels(run.stderr, "ERROR", "WARNING") == [], run.stderr
    assert {stream: len(records) for stream, records in run.records.items()} == dict.fromkeys(
        STREAMS, 1
    )


def test_test_mode_never_tells_a_target_to_drop_rows(sandbox):
    resource = {"name": "replaced", "endpoint": {"path": "/v1/resource"}}
    config = config_for(sandbox.base_url, resources=[{**resource, "write_disposition": "replace"}])
    run = run_cli(config, "--test")
    assert run.returncode == 0, run.stderr
    stream = [m["type"] for m in run.messages if m.get("stream") == "replaced"]
    # The opening ACTIVATE_VERSION only: a closing one would drop every row not in the test.
    assert stream == ["SCHEMA", "ACTIVATE_VERSION", "RECORD"]


def matches(pattern: re.Pattern[str], lines: list[str]) -> list[re.Match[str]]:
    """The lines that match a pattern, as matches."""
    return [found for line in lines if (found := pattern.search(line))]


def test_a_small_default_run_prints_a_summary_per_stream_and_little_else(sandbox):
    run = run_cli(config_for(sandbox.base_url))
    assert run.returncode == 0, run.stderr
    lines = run.stderr.splitlines()
    summaries = {m["stream"]: m for m in matches(SUMMARY, lines)}
    assert set(summaries) == set(STREAMS)
    for stream, summary in summaries.items():
        assert int(summary["records"].replace(",", "")) == len(run.records[stream])
        assert summary["bookmark"] == run.bookmark(stream)
    assert "METRIC" not in run.stderr
    # Progress lines come every few seconds, so only a slow run has them; the rest is short:
    # the version and settings source, the token, then per stream its start and its summary.
    rest = [line for line in lines if not PROGRESS.search(line)]
    assert len(rest) <= 3 + 2 * len(STREAMS), run.stderr


def test_a_failed_stream_is_summarized_with_the_records_it_delivered(sandbox):
    sandbox.add_fault({"kind": "missing_field", "field": "id", "path": "/v1/sessions", "skip": 1})
    run = run_cli(config_for(sandbox.base_url, page_size=50))
    assert run.returncode == 1
    lines = run.stderr.splitlines()
    [failed] = matches(FAILED, lines)
    assert failed["stream"] == "sessions"
    assert int(failed["records"]) == len(run.records["sessions"]) > 0
    assert {m["stream"] for m in matches(SUMMARY, lines)} == set(STREAMS) - {"sessions"}
    assert "Sync incomplete" in lines[-1], "the cause stays on the last line"


def test_a_long_run_prints_progress_per_stream_with_growing_counts(
    sandbox_factory, monkeypatch, caplog
):
    monkeypatch.setattr(progress, "PROGRESS_EVERY_SECONDS", 0.2)
    monkeypatch.setattr(sync, "STATE_EVERY", 100)  # so that the bookmark moves during the run
    # 40 pages of 20 records at 60 ms each: every stream syncs for more than 2 s.
    sandbox = sandbox_factory(counts=dict.fromkeys(STREAMS, 800), latency_ms=60)
    caplog.set_level(logging.INFO)
    run = run_tap(config_for(sandbox.base_url, page_size=20))
    lines = caplog.messages
    for stream in STREAMS:
        seen = [m for m in matches(PROGRESS, lines) if m["stream"] == stream]
        assert len(seen) >= 2, f"{stream}: {lines}"
        counts = [int(m["records"].replace(",", "")) for m in seen]
        assert counts == sorted(counts)
        assert counts[0] < counts[-1] <= len(run.records[stream])
        bookmarks = [datetime.fromisoformat(m["bookmark"]) for m in seen if m["bookmark"] != "none"]
        assert bookmarks, f"{stream}: the bookmark of the last STATE is shown"
        assert bookmarks == sorted(bookmarks)
        assert bookmarks[-1] <= datetime.fromisoformat(run.bookmark(stream) or "")
        [summary] = [m for m in matches(SUMMARY, lines) if m["stream"] == stream]
        assert int(summary["records"].replace(",", "")) == len(run.records[stream])


class Stream:
    """A stream as the progress lines see it."""

    name = "things"
    replication_key = "updated_at"
    records_synced = 7
    bookmark = "2024-01-01T00:00:00Z"
    logger = logging.getLogger("tap-analytics.things")


def test_an_interrupted_stream_is_summarized_as_interrupted(caplog):
    caplog.set_level(logging.INFO)
    with pytest.raises(SyncInterruptedError), progress.Progress().syncing(Stream()):
        raise SyncInterruptedError(15)
    [message] = caplog.messages
    assert re.fullmatch(
        r"Sync of 'things' interrupted after 7 records in [\d.]+ s, bookmark 2024-01-01T00:00:00Z",
        message,
    )


def test_record_count_metrics_still_count_the_records_since_the_last_one(caplog):
    caplog.set_level(logging.INFO, logger="singer_sdk.metrics")
    with progress.RecordCounter("things", endpoint=None, log_interval=-1) as counter:
        for _ in range(5):
            counter.increment()
    assert counter.value == 5, "the count only grows, for the progress lines"
    points = metric_points("\n".join(caplog.messages))
    assert len(points) > 1
    assert sum(point["value"] for point in points) == 5
