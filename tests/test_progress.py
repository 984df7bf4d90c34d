"""What a person reads on stderr: short, no false errors, progress and a summary per stream."""

from __future__ import annotations

from tapkit import config_for, run_cli

STREAMS = ("customers", "sessions", "events", "campaigns")


def levels(stderr: str, *names: str) -> list[str]:
    """The stderr lines logged at any of the named levels."""
    return [line for line in stderr.splitlines() if any(f"| {name}" in line for name in names)]


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
