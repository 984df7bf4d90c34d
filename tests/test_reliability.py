"""Reliability: isolation, interruption, kill -9, moving records, bad state, no leaked secrets."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import typing as t

import pytest

from tap_analytics.retry import MAX_RETRY_AFTER
from tap_analytics.sync import STATE_EVERY
from tapkit import CLIENT_SECRET, TAP, Run, config_for, parse_lines, run_cli, run_tap, wiretap

if t.TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

    import requests

STREAMS = ("customers", "sessions", "events", "campaigns")


def all_ids(sandbox, stream: str) -> list[str]:
    return [r["id"] for r in sandbox.records(stream)]


def test_a_failing_stream_does_not_stop_the_others(sandbox):
    pages_before_failure, page_size = 3, 20
    sandbox.add_fault(
        {
            "kind": "status",
            "status": 403,
            "path": "/v1/sessions",
            "skip": pages_before_failure,
            "times": -1,
        }
    )
    run = run_cli(config_for(sandbox.base_url, page_size=page_size))
    assert run.returncode == 1
    last = run.stderr.strip().splitlines()[-1]
    for part in ("sessions", "403", "forbidden", "rerun"):
        assert part in last
    for stream in ("customers", "events", "campaigns"):
        assert run.ids(stream) == all_ids(sandbox, stream)
        assert run.bookmark(stream) == sandbox.records(stream)[-1]["updated_at"]
    # The failed stream keeps its last checkpoint: the records it did write.
    written = run.records["sessions"]
    assert len(written) == pages_before_failure * page_size
    assert run.bookmark("sessions") == written[-1]["updated_at"]


def test_every_failed_stream_is_named(sandbox):
    for path in ("/v1/sessions", "/v1/campaigns"):
        sandbox.add_fault({"kind": "status", "status": 404, "path": path, "times": -1})
    run = run_cli(config_for(sandbox.base_url))
    assert run.returncode == 1
    last = run.stderr.strip().splitlines()[-1]
    assert "2 stream(s) incomplete (campaigns, sessions)" in last


class TapProcess:
    """The tap's command line in a subprocess, its output collected as it is written."""

    def __init__(self, config: dict[str, t.Any], tmp: Path) -> None:
        path = tmp / f"config-{id(self)}.json"
        path.write_text(json.dumps(config))
        self.process = subprocess.Popen(
            [TAP, "--config", str(path)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self.stdout, self.stderr = bytearray(), bytearray()
        self.changed = threading.Condition()
        self.open_pipes = 2
        self.readers = [
            threading.Thread(target=self.collect, args=(pipe, buffer), daemon=True)
            for pipe, buffer in (
                (self.process.stdout, self.stdout),
                (self.process.stderr, self.stderr),
            )
        ]
        for reader in self.readers:
            reader.start()

    def collect(self, pipe: t.IO[bytes], buffer: bytearray) -> None:
        """Append what the tap writes to `buffer` until it closes the pipe; wake the waiters."""
        while chunk := os.read(pipe.fileno(), 65536):
            with self.changed:
                buffer.extend(chunk)
                self.changed.notify_all()
        with self.changed:
            self.open_pipes -= 1
            self.changed.notify_all()

    def wait_until(self, condition: Callable[[], bool], what: str, timeout: float = 60) -> None:
        """Block until `condition` holds for the output so far; fail if the tap ends first."""
        with self.changed:
            self.changed.wait_for(lambda: condition() or not self.open_pipes, timeout)
            if not condition():
                pytest.fail(f"the tap never {what}; stderr: {bytes(self.stderr)[-2000:]!r}")

    def records_written(self) -> int:
        """RECORD messages written so far."""
        return self.stdout.count(b'"type":"RECORD"')

    def finish(self, timeout: float) -> Run:
        """Wait for the tap to exit and return its whole output."""
        returncode = self.process.wait(timeout=timeout)
        for reader in self.readers:
            reader.join()
        for pipe in (self.process.stdout, self.process.stderr):
            if pipe is not None:
                pipe.close()
        return Run(parse_lines(bytes(self.stdout)), self.stderr.decode(), returncode)


@pytest.fixture
def start_tap(tmp_path: Path) -> Iterator[Callable[[dict[str, t.Any]], TapProcess]]:
    """Start the tap in a subprocess; a tap still running when the test ends is killed."""
    started: list[TapProcess] = []

    def start(config: dict[str, t.Any]) -> TapProcess:
        started.append(TapProcess(config, tmp_path))
        return started[-1]

    yield start
    for tap in started:
        if tap.process.poll() is None:
            tap.process.kill()
        tap.finish(timeout=60)


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_interrupt_writes_the_last_safe_state_and_exits_non_zero(
    sandbox_factory, start_tap, signum
):
    counts = {"customers": 3000, "sessions": 3000, "events": 3000, "campaigns": 3000}
    sandbox = sandbox_factory(counts=counts, latency_ms=5)
    tap = start_tap(config_for(sandbox.base_url, page_size=50))
    tap.wait_until(lambda: tap.records_written() >= 1500, "wrote 1500 records")
    tap.process.send_signal(signum)
    run = tap.finish(timeout=60)
    assert run.returncode == 128 + signum
    assert run.messages[-1]["type"] == "STATE"
    assert "interrupted" in run.stderr.strip().splitlines()[-1]
    rerun = run_tap(config_for(sandbox.base_url, page_size=50), state=run.last_state)
    for stream in STREAMS:
        assert set(run.ids(stream)) | set(rerun.ids(stream)) == set(all_ids(sandbox, stream))
        # The last STATE covers exactly what was written: resume re-reads ties at most.
        assert len(set(run.ids(stream)) & set(rerun.ids(stream))) <= 5


@pytest.mark.slow
@pytest.mark.parametrize("requests", [1, 8])  # 8: streams read in slices
@pytest.mark.parametrize("kill_after", [1, 700, 2600, 6100])
def test_kill_9_then_rerun_delivers_everything_missing(
    sandbox_factory, start_tap, kill_after, requests
):
    counts = {"customers": 2500, "sessions": 2000, "events": 2500, "campaigns": 500}
    sandbox = sandbox_factory(counts=counts, latency_ms=3)
    config = config_for(
        sandbox.base_url, page_size=50, max_parallel_streams=2, max_parallel_requests=requests
    )
    tap = start_tap(config)
    tap.wait_until(lambda: tap.records_written() >= kill_after, f"wrote {kill_after} records")
    tap.process.kill()
    killed = tap.finish(timeout=60)
    state = killed.states[-1] if killed.states else None
    rerun = run_tap(config, state=state)
    worst = 0
    for stream in STREAMS:
        assert set(killed.ids(stream)) | set(rerun.ids(stream)) == set(all_ids(sandbox, stream))
        reread = len(set(killed.ids(stream)) & set(rerun.ids(stream)))
        entry = (state or {}).get("bookmarks", {}).get(stream, {})
        # A checkpoint's worth, plus a page, for each slice the state left unread.
        assert reread <= max(len(entry.get("slices", [])), 1) * (STATE_EVERY + 50)
        worst = max(worst, reread)
    print(f"kill -9 after {kill_after} records: worst re-read {worst} records per stream")


def test_records_updated_during_a_sync_are_delivered_never_skipped(sandbox_factory):
    sandbox = sandbox_factory(
        counts={"customers": 1000, "sessions": 5, "events": 5, "campaigns": 5}
    )
    records = sandbox.records("customers")
    early = [records[i]["id"] for i in (10, 20, 30)]
    pages_seen = 0

    # Once the tap has read past them, move them to the end: they must come again.
    def update_after_the_fifth_page(response: requests.Response, _sent_at: float) -> None:
        nonlocal pages_seen
        if response.request.path_url.startswith("/v1/customers"):
            pages_seen += 1
            if pages_seen == 5:
                sandbox.update_records("customers", ids=early)

    with wiretap(update_after_the_fifth_page):
        run = run_tap(config_for(sandbox.base_url, page_size=20))
    assert pages_seen > 5
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


@pytest.mark.slow
def test_interrupt_is_prompt_during_a_long_backoff(sandbox, start_tap):
    retry_after = int(MAX_RETRY_AFTER)
    sandbox.add_fault(
        {"kind": "status", "status": 429, "retry_after": retry_after, "path": "/v1/events"}
    )
    tap = start_tap(config_for(sandbox.base_url, page_size=50))
    tap.wait_until(lambda: b"Retry 1 of" in tap.stderr, "began to wait out the Retry-After")
    tap.process.send_signal(signal.SIGTERM)
    # Half the Retry-After: a tap that waits it out fails here, a slow machine does not.
    run = tap.finish(timeout=retry_after / 2)
    assert run.returncode == 128 + signal.SIGTERM
    assert run.messages[-1]["type"] == "STATE"
    events = [r["status"] for r in sandbox.request_log() if r["path"] == "/v1/events"]
    assert events == [429], "stopped without sending the retry"
