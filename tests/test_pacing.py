"""Pacing: streams run side by side only while the running ones mostly wait on the API."""

from __future__ import annotations

import io
import itertools
import threading
from unittest import mock

import pytest
from requests.adapters import HTTPAdapter

from tap_analytics.output import LockedWriter
from tap_analytics.pacing import JUDGED_AFTER, MOSTLY_WAITING, PacedThreads, may_start
from tap_analytics.pages import WaitClock
from tap_analytics.sync import AnalyticsStream
from tap_analytics.tap import TapAnalytics
from tapkit import FakeClock, config_for, run_tap

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
    wall, cpu = FakeClock(), FakeClock()
    tap = TapAnalytics(config=config_for(sandbox.base_url, page_size=20))
    tap.writer.out = io.BytesIO()
    stream = tap.streams["customers"]
    assert isinstance(stream, AnalyticsStream)
    clock = WaitClock(now=wall.now, cpu=cpu.now, started=wall.now())
    stream.begin_sync(clock)  # as the run begins it, with the clock the pacing watches
    send, parse = HTTPAdapter.send, AnalyticsStream.parse_response

    def answered_after_a_second(adapter: HTTPAdapter, request, *args, **kwargs):
        if request.path_url.startswith("/v1/"):  # a page takes a second, a quarter on our CPU
            wall.sleep(1.0)
            cpu.sleep(0.25)
        return send(adapter, request, *args, **kwargs)

    def parsed_in_half_a_second(self: AnalyticsStream, response):
        wall.sleep(0.5)  # the thread's own work between requests
        cpu.sleep(0.5)
        return parse(self, response)

    with (
        mock.patch.object(HTTPAdapter, "send", answered_after_a_second),
        mock.patch.object(AnalyticsStream, "parse_response", parsed_in_half_a_second),
    ):
        stream.sync()
    pages = clock.requests
    assert pages == -(-sandbox.counts()["customers"] // 20)
    assert clock.waited == 0.75 * pages
    assert clock.share_waiting(wall.now()) == 0.5


class FakeStream:
    """A stream as the pacing sees it: a name and the wait clock the pacing gives it."""

    def __init__(self, name: str) -> None:
        """A stream called `name`, without a clock until it starts."""
        self.name = name
        self.wait_clock = WaitClock()

    def begin_sync(self, clock: WaitClock) -> None:
        """Take the clock the pacing gives this sync."""
        self.wait_clock = clock


def test_streams_that_mostly_wait_all_run_at_once() -> None:
    all_running = threading.Barrier(len(STREAMS), timeout=60)  # a bound for a failing run only

    def wait_on_the_api(stream: FakeStream) -> None:
        with stream.wait_clock.lock:
            stream.wait_clock.in_flight_since = stream.wait_clock.started
        all_running.wait()  # passes only once every stream runs

    clock = FakeClock(step=1.0)
    threads = PacedThreads(len(STREAMS), wait_on_the_api, lambda: None, now=clock.now)
    assert threads.run([FakeStream(name) for name in STREAMS]) == {}


def test_a_stream_that_computes_holds_the_next_one_back() -> None:
    log: list[str] = []
    released = threading.Event()

    def compute(stream: FakeStream) -> None:
        log.append(f"start {stream.name}")
        with stream.wait_clock.lock:
            stream.wait_clock.requests = 1  # answered at once: all its time is its own work
        if stream.name == "first":
            released.wait()
        log.append(f"end {stream.name}")

    def tick() -> None:
        if "start first" in log:
            released.set()  # the pacing looked again while `first` computed

    clock = FakeClock(step=1.0)
    threads = PacedThreads(4, compute, tick, now=clock.now)
    assert threads.run([FakeStream("first"), FakeStream("second")]) == {}
    assert log == ["start first", "end first", "start second", "end second"]


def first_and_last(log: list[dict], stream: str) -> tuple[int, int]:
    """Positions of a stream's first and last data request in the sandbox's log."""
    positions = [i for i, r in enumerate(log) if r["path"] == f"/v1/{stream}"]
    return positions[0], positions[-1]


def test_max_parallel_streams_1_runs_them_one_after_another(sandbox) -> None:
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
    assert writer.close(lambda: out.write(b'{"type":"STATE","value":{}}\n'), timeout=60)
    written = out.getvalue()
    writer.checkpoint([b'{"type":"RECORD"}\n'], lambda: {"bookmarks": {}})
    assert out.getvalue() == written
    assert written.endswith(
        b'{"type":"STATE","value":{"bookmarks":{}}}\n{"type":"STATE","value":{}}\n'
    )
