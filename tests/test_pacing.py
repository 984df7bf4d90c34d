"""Pacing: streams run side by side only while the running ones mostly wait on the API."""

from __future__ import annotations

import io
import itertools
import time

import pytest

from tap_analytics.output import LockedWriter
from tap_analytics.pacing import JUDGED_AFTER, MOSTLY_WAITING, may_start
from tap_analytics.pages import WaitClock
from tap_analytics.sync import AnalyticsStream
from tap_analytics.tap import TapAnalytics
from tapkit import config_for, run_tap

STREAMS = ("customers", "sessions", "events", "campaigns")
NOW = 1000.0


def clock(*, ran: float, waited: float, requests: int = 1, in_flight: float = 0.0) -> WaitClock:
    """A stream's wait clock after `ran` seconds, `waited` of them on answered requests."""
    clock = WaitClock(started=NOW - ran, waited=waited, requests=requests)
    if in_flight:
        clock.in_flight_since = NOW - in_flight
    return clock


def test_the_first_stream_always_starts() -> None:
    assert may_start([], cap=4, now=NOW)


@pytest.mark.parametrize(
    ("share", "starts"), [(0.1, False), (MOSTLY_WAITING, False), (0.6, True), (0.99, True)]
)
def test_another_stream_starts_only_while_the_running_one_mostly_waits(
    share: float, *, starts: bool
) -> None:
    assert may_start([clock(ran=1.0, waited=share)], cap=4, now=NOW) is starts


def test_every_running_stream_must_mostly_wait() -> None:
    waiting, computing = clock(ran=1.0, waited=0.9), clock(ran=1.0, waited=0.2)
    assert not may_start([waiting, computing], cap=4, now=NOW)
    assert may_start([waiting, waiting], cap=4, now=NOW)


def test_the_cap_holds_however_much_they_wait() -> None:
    waiting = clock(ran=1.0, waited=0.99)
    assert may_start([waiting] * 3, cap=4, now=NOW)
    assert not may_start([waiting] * 4, cap=4, now=NOW)
    assert not may_start([waiting], cap=1, now=NOW)


def test_a_request_in_flight_counts_as_waiting() -> None:
    slow_first_answer = clock(ran=0.1, waited=0.0, requests=0, in_flight=0.09)
    assert slow_first_answer.share_waiting(NOW) == pytest.approx(0.9)
    assert may_start([slow_first_answer], cap=4, now=NOW)


def test_a_stream_is_not_judged_before_it_ran_a_while() -> None:
    just_started = clock(ran=JUDGED_AFTER / 2, waited=0.0, requests=0, in_flight=JUDGED_AFTER / 2)
    assert not may_start([just_started], cap=4, now=NOW)
    assert WaitClock(started=NOW).share_waiting(NOW) is None  # no request yet


def test_the_clock_counts_waits_not_the_threads_own_work(sandbox) -> None:
    sandbox.set_latency(50)
    tap = TapAnalytics(config=config_for(sandbox.base_url, page_size=20))
    tap.writer.out = io.BytesIO()
    stream = tap.streams["customers"]
    assert isinstance(stream, AnalyticsStream)
    stream.sync()
    assert stream.current is not None
    clock = stream.current.clock
    assert clock.requests >= 2
    share = clock.share_waiting(time.monotonic())
    # Each page waited 50 ms for an answer the tap handles in well under a millisecond.
    assert share is not None
    assert share > MOSTLY_WAITING


def first_and_last(log: list[dict], stream: str) -> tuple[int, int]:
    """Positions of a stream's first and last data request in the sandbox's log."""
    positions = [i for i, r in enumerate(log) if r["path"] == f"/v1/{stream}"]
    return positions[0], positions[-1]


def test_streams_that_wait_on_the_api_run_side_by_side(sandbox_factory) -> None:
    sandbox = sandbox_factory(counts=dict.fromkeys(STREAMS, 300))  # 15 pages of 20 each
    sandbox.set_latency(30)
    run = run_tap(config_for(sandbox.base_url, page_size=20, max_parallel_streams=4))
    for stream in STREAMS:
        assert run.ids(stream) == [r["id"] for r in sandbox.records(stream)]
    spans = {stream: first_and_last(sandbox.request_log(), stream) for stream in STREAMS}
    # Every stream began before any other had ended: all four ran at once.
    assert max(first for first, _ in spans.values()) < min(last for _, last in spans.values())


def test_max_parallel_streams_1_runs_them_one_after_another(sandbox) -> None:
    sandbox.set_latency(30)
    run = run_tap(config_for(sandbox.base_url, page_size=20, max_parallel_streams=1))
    for stream in STREAMS:
        assert run.ids(stream) == [r["id"] for r in sandbox.records(stream)]
    spans = sorted(first_and_last(sandbox.request_log(), stream) for stream in STREAMS)
    for (_, last), (first, _) in itertools.pairwise(spans):
        assert last < first


def test_a_closed_writer_writes_nothing_more() -> None:
    out = io.BytesIO()
    writer = LockedWriter(out)
    writer.checkpoint([b'{"type":"RECORD"}\n'], lambda: {"bookmarks": {}})
    writer.close()
    written = out.getvalue()
    writer.checkpoint([b'{"type":"RECORD"}\n'], lambda: {"bookmarks": {}})
    assert out.getvalue() == written
    assert written.endswith(b'{"type":"STATE","value":{"bookmarks":{}}}\n')
