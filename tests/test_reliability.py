"""Reliability: isolation, interruption, kill -9, moving records, bad state, no leaked secrets."""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import time
import typing as t

import pytest

if t.TYPE_CHECKING:
    from pathlib import Path

from tapkit import CLIENT_SECRET, TAP, Run, config_for, parse_lines, run_cli, run_tap

STREAMS = ("customers", "sessions", "events", "campaigns")


def all_ids(sandbox, stream: str) -> list[str]:
    return [r["id"] for r in sandbox.records(stream)]


def test_a_failing_stream_does_not_stop_the_others(sandbox):
    sandbox.add_fault(
        {"kind": "status", "status": 403, "path": "/v1/sessions", "skip": 3, "times": -1}
    )
    run = run_cli(config_for(sandbox.base_url, page_size=20))
    assert run.returncode == 1
    last = run.stderr.strip().splitlines()[-1]
    for part in ("sessions", "403", "forbidden", "rerun"):
        assert part in last
    for stream in ("customers", "events", "campaigns"):
        assert run.ids(stream) == all_ids(sandbox, stream)
        assert run.bookmark(stream) == sandbox.records(stream)[-1]["updated_at"]
    # The failed stream keeps its last checkpoint: the records it did write.
    written = run.records["sessions"]
    assert len(written) == 60
    assert run.bookmark("sessions") == written[-1]["updated_at"]


def test_every_failed_stream_is_named(sandbox):
    for path in ("/v1/sessions", "/v1/campaigns"):
        sandbox.add_fault({"kind": "status", "status": 404, "path": path, "times": -1})
    run = run_cli(config_for(sandbox.base_url))
    assert run.returncode == 1
    last = run.stderr.strip().splitlines()[-1]
    assert "2 stream(s) incomplete (campaigns, sessions)" in last


def start_tap(config: dict, tmp: Path, state: dict | None = None) -> subprocess.Popen:
    (tmp / "config.json").write_text(json.dumps(config))
    argv = [TAP, "--config", str(tmp / "config.json")]
    if state is not None:
        (tmp / "state.json").write_text(json.dumps(state))
        argv += ["--state", str(tmp / "state.json")]
    with (tmp / "out").open("wb") as out, (tmp / "err").open("wb") as err:
        return subprocess.Popen(argv, stdout=out, stderr=err)


def wait_for_records(tmp: Path, at_least: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (tmp / "out").exists() and (tmp / "out").read_bytes().count(b'"RECORD"') >= at_least:
            return
        time.sleep(0.02)
    pytest.fail("the tap wrote too few records")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_interrupt_writes_the_last_safe_state_and_exits_non_zero(sandbox_factory, tmp_path, signum):
    counts = {"customers": 3000, "sessions": 3000, "events": 3000, "campaigns": 3000}
    sandbox = sandbox_factory(counts=counts, latency_ms=5)
    process = start_tap(config_for(sandbox.base_url, page_size=50), tmp_path)
    wait_for_records(tmp_path, 1500)
    process.send_signal(signum)
    assert process.wait(timeout=30) == 128 + signum
    run = Run(parse_lines((tmp_path / "out").read_bytes()))
    assert run.messages[-1]["type"] == "STATE"
    assert "interrupted" in (tmp_path / "err").read_text().strip().splitlines()[-1]
    rerun = run_tap(config_for(sandbox.base_url, page_size=50), state=run.last_state)
    for stream in STREAMS:
        assert set(run.ids(stream)) | set(rerun.ids(stream)) == set(all_ids(sandbox, stream))
        # The last STATE covers exactly what was written: resume re-reads ties at most.
        assert len(set(run.ids(stream)) & set(rerun.ids(stream))) <= 5


@pytest.mark.parametrize("kill_after", [1, 700, 2600, 6100])
def test_kill_9_then_rerun_delivers_everything_missing(sandbox_factory, tmp_path, kill_after):
    counts = {"customers": 2500, "sessions": 2000, "events": 2500, "campaigns": 500}
    sandbox = sandbox_factory(counts=counts, latency_ms=3)
    process = start_tap(
        config_for(sandbox.base_url, page_size=50, max_parallel_streams=2), tmp_path
    )
    wait_for_records(tmp_path, kill_after)
    process.kill()
    process.wait(timeout=10)
    killed = Run(parse_lines((tmp_path / "out").read_bytes()))
    state = killed.states[-1] if killed.states else None
    rerun = run_tap(config_for(sandbox.base_url, page_size=50), state=state)
    worst = 0
    for stream in STREAMS:
        assert set(killed.ids(stream)) | set(rerun.ids(stream)) == set(all_ids(sandbox, stream))
        worst = max(worst, len(set(killed.ids(stream)) & set(rerun.ids(stream))))
    assert worst <= 1000 + 50
    print(f"kill -9 after {kill_after} records: worst re-read {worst} records per stream")


def test_records_updated_during_a_sync_are_delivered_never_skipped(sandbox_factory):
    sandbox = sandbox_factory(
        counts={"customers": 1000, "sessions": 5, "events": 5, "campaigns": 5}, latency_ms=5
    )
    records = sandbox.records("customers")
    early = [records[i]["id"] for i in (10, 20, 30)]

    # Once the tap is past them, move them to the end: they must come again.
    def update_midway() -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            seen = [r for r in sandbox.request_log() if r["path"] == "/v1/customers"]
            if len(seen) >= 5:
                sandbox.update_records("customers", ids=early)
                return
            time.sleep(0.005)

    updater = threading.Thread(target=update_midway)
    updater.start()
    run = run_tap(config_for(sandbox.base_url, page_size=20))
    updater.join()
    ids = run.ids("customers")
    assert set(ids) == set(all_ids(sandbox, "customers"))
    for moved in early:
        assert ids.count(moved) == 2
    final = {r["id"]: r for r in run.records["customers"]}
    current = {r["id"]: r for r in sandbox.records("customers")}
    for moved in early:
        assert final[moved]["updated_at"] == current[moved]["updated_at"]
    assert run.bookmark("customers") == sandbox.records("customers")[-1]["updated_at"]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("{not json", "is not valid JSON"),
        ('["a list"]', "must be a JSON object"),
        (
            '{"bookmarks": {"customers": {"replication_key_value": "last tuesday"}}}',
            "not an RFC 3339 timestamp",
        ),
        (
            '{"bookmarks": {"customers": {"replication_key_value": 1714557600}}}',
            "RFC 3339 timestamp",
        ),
    ],
)
def test_bad_state_gets_a_clear_error_not_a_full_refresh(sandbox, tmp_path, content, expected):
    (tmp_path / "config.json").write_text(json.dumps(config_for(sandbox.base_url)))
    (tmp_path / "state.json").write_text(content)
    result = subprocess.run(
        [TAP, "--config", str(tmp_path / "config.json"), "--state", str(tmp_path / "state.json")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert expected in last
    assert "Traceback" not in result.stderr
    assert '"RECORD"' not in result.stdout
    assert [r for r in sandbox.request_log() if r["path"].startswith("/v1/")] == []


FAULTS = [
    {"kind": "status", "status": 429, "retry_after": 1, "times": 2},
    {"kind": "status", "status": 503, "times": 3},
    {"kind": "drop", "times": 2},
    {"kind": "revoke", "skip": 3, "times": 1},
    {"kind": "status", "status": 403, "times": -1},
]


@pytest.mark.parametrize("fault", FAULTS, ids=lambda f: f"{f['kind']}-{f.get('status', '')}")
def test_no_secret_or_token_in_any_output_at_debug_level(sandbox, fault):
    sandbox.add_fault({**fault, "path": "/v1/customers"})
    sandbox.add_fault({"kind": "status", "status": 500, "path": "/oauth/v1/token", "times": 1})
    run = run_cli(
        config_for(sandbox.base_url, page_size=30),
        env={"TAP_ANALYTICS_LOG_LEVEL": "DEBUG", "LOGLEVEL": "DEBUG"},
    )
    tokens = {r["token"] for r in sandbox.request_log() if r.get("token")}
    assert tokens, "the sandbox saw bearer tokens"
    assert "DEBUG" in run.stderr
    output = run.stderr + json.dumps(run.messages)
    assert CLIENT_SECRET not in output
    for token in tokens:
        assert token not in output


def test_interrupt_is_prompt_during_a_long_backoff(sandbox, tmp_path):
    sandbox.add_fault({"kind": "status", "status": 429, "retry_after": 60, "path": "/v1/events"})
    process = start_tap(config_for(sandbox.base_url, page_size=50), tmp_path)
    deadline = time.monotonic() + 20
    while not any(r["status"] == 429 for r in sandbox.request_log()):
        assert time.monotonic() < deadline, "the 429 never came"
        time.sleep(0.02)
    time.sleep(0.5)
    stopped = time.monotonic()
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 128 + signal.SIGTERM
    assert time.monotonic() - stopped < 5, "a 60 s Retry-After must not delay a SIGTERM"
    run = Run(parse_lines((tmp_path / "out").read_bytes()))
    assert run.messages[-1]["type"] == "STATE"
