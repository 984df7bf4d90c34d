"""What a person reads on stderr: short, no false errors, progress and a summary per stream."""

from __future__ import annotations

import json

from tapkit import config_for, run_cli

STREAMS = ("customers", "sessions", "events", "campaigns")


def levels(stderr: str, *names: str) -> list[str]:
    """The stderr lines logged at any of the named levels."""
    return [line for line in stderr.splitlines() if any(f"| {name}" in line for name in names)]


def metric_points(stderr: str) -> list[dict]:
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
