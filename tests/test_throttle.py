"""The client-side throttle: parallel streams stay inside the API's rate-limit window."""

from __future__ import annotations

import collections
import datetime as dt
import functools
from http import HTTPStatus
from unittest import mock

import pytest
import requests

from tap_analytics.throttle import Throttle
from tapkit import FakeClock, config_for, customers_only, run_cli, run_tap, wiretap

STREAMS = ("customers", "sessions", "events", "campaigns")


def test_parallel_streams_wait_for_the_window_instead_of_drawing_429s(sandbox_factory):
    sandbox = sandbox_factory(counts=dict.fromkeys(STREAMS, 300))
    sandbox.configure(rate_limit=25, rate_window=1.0)
    run = run_tap(config_for(sandbox.base_url, page_size=20, max_parallel_streams=4))
    for stream in STREAMS:
        assert run.ids(stream) == [r["id"] for r in sandbox.records(stream)]
    statuses = collections.Counter(r["status"] for r in sandbox.request_log())
    assert statuses[429] == 0, statuses
    assert statuses[200] >= 60, "enough requests to cross several windows"


def answer(status: int, **headers: str) -> requests.Response:
    """A response with a status and headers."""
    response = requests.Response()
    response.status_code = status
    response.headers.update(headers)
    return response


def answered(throttle: Throttle, response: requests.Response) -> None:
    """A request's answer, observed, and the request done."""
    throttle.observe(response)
    throttle.done()


def test_a_retry_after_holds_requests_back_that_long() -> None:
    clock = FakeClock()
    throttle = Throttle(now=clock.now, sleep=clock.sleep)
    throttle.wait()
    assert clock.time == 1000.0, "no wait before any answer"
    answered(throttle, answer(HTTPStatus.TOO_MANY_REQUESTS, **{"Retry-After": "3"}))
    throttle.wait()
    assert clock.time == 1003.0
    throttle.wait()
    assert clock.time == 1003.0, "the pause is over"


def test_requests_past_what_the_window_allows_wait_for_its_reset() -> None:
    clock = FakeClock()
    throttle = Throttle(now=clock.now, sleep=clock.sleep)
    throttle.wait()
    answered(
        throttle, answer(HTTPStatus.OK, **{"X-RateLimit-Remaining": "3", "X-RateLimit-Reset": "2"})
    )
    for _ in range(3):  # the three the window still allows go at once
        throttle.wait()
    assert clock.time == 1000.0
    throttle.wait()  # a fourth waits for the window to reset
    assert clock.time == 1002.0


def test_requests_in_flight_take_from_what_the_window_allows() -> None:
    clock = FakeClock()
    throttle = Throttle(now=clock.now, sleep=clock.sleep)
    for _ in range(4):
        throttle.wait()
    # One answer says 3 are left, with 3 requests still unanswered: none may go.
    answered(
        throttle, answer(HTTPStatus.OK, **{"X-RateLimit-Remaining": "3", "X-RateLimit-Reset": "2"})
    )
    throttle.wait()
    assert clock.time == 1002.0


def test_once_every_request_is_answered_one_goes_alone_to_learn_what_is_left() -> None:
    clock = FakeClock()
    throttle = Throttle(now=clock.now, sleep=clock.sleep)
    for _ in range(4):
        throttle.wait()
    left = {"X-RateLimit-Remaining": "2", "X-RateLimit-Reset": "2"}
    for _ in range(4):  # the API had counted all four when it answered each
        answered(throttle, answer(HTTPStatus.OK, **left))
    throttle.wait()  # answers given with others in flight say too little: one goes alone
    assert clock.time == 1000.0
    answered(throttle, answer(HTTPStatus.OK, **{**left, "X-RateLimit-Remaining": "1"}))
    throttle.wait()  # the answer to a request alone says exactly what is left
    assert clock.time == 1000.0
    answered(throttle, answer(HTTPStatus.OK, **{**left, "X-RateLimit-Remaining": "0"}))
    throttle.wait()
    assert clock.time == 1002.0


def test_an_older_answer_that_comes_last_sends_none_alone_past_the_window() -> None:
    clock = FakeClock()
    throttle = Throttle(now=clock.now, sleep=clock.sleep)
    throttle.wait()
    window = {"X-RateLimit-Reset": "2"}
    answered(throttle, answer(HTTPStatus.OK, **window, **{"X-RateLimit-Remaining": "2"}))
    throttle.wait()  # the API counts it: 1 left
    throttle.wait()  # the API counts it: 0 left
    # The second request's answer overtakes the first's: the window is spent.
    answered(throttle, answer(HTTPStatus.OK, **window, **{"X-RateLimit-Remaining": "0"}))
    answered(throttle, answer(HTTPStatus.OK, **window, **{"X-RateLimit-Remaining": "1"}))
    throttle.wait()  # the least the answers said is what is left: wait for the reset
    assert clock.time == 1002.0


def test_a_new_window_allows_the_apis_limit_until_its_first_answer() -> None:
    clock = FakeClock()
    spent = {"X-RateLimit-Limit": "2", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "1"}
    polls: list[float] = []

    def sleep(seconds: float) -> None:
        clock.sleep(seconds)
        if clock.time > 1001 and not polls:  # the new window's first answer comes meanwhile
            polls.append(clock.time)
            answered(throttle, answer(HTTPStatus.OK, **spent))

    throttle = Throttle(now=clock.now, sleep=sleep)
    throttle.wait()
    answered(throttle, answer(HTTPStatus.OK, **spent))
    throttle.wait()
    throttle.wait()  # the next window's two go at its start
    assert clock.time == 1001.0
    throttle.wait()  # a third is past the limit: it waits for an answer, then for the reset
    assert polls
    assert clock.time >= 1002.0


def test_a_request_that_failed_unanswered_leaves_no_place_taken() -> None:
    clock = FakeClock()
    throttle = Throttle(now=clock.now, sleep=clock.sleep)
    throttle.wait()
    spent = {"X-RateLimit-Limit": "1", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "1"}
    answered(throttle, answer(HTTPStatus.OK, **spent))
    throttle.wait()  # the next window's one request
    throttle.done()  # its connection dropped: no answer tells what the window has left
    throttle.wait()  # none in flight: one goes alone to learn it
    assert clock.time == 1001.0


def test_streams_past_a_limit_below_their_number_draw_429s_in_the_first_window_only(
    sandbox_factory,
):
    sandbox = sandbox_factory(counts=dict.fromkeys(STREAMS, 30))
    sandbox.configure(rate_limit=2, rate_window=1.0)
    run = run_tap(config_for(sandbox.base_url, page_size=10, max_parallel_streams=4))
    for stream in STREAMS:
        assert run.ids(stream) == [r["id"] for r in sandbox.records(stream)]
    log = sandbox.request_log()
    # Before the first answer, nothing says what a window allows: each stream's first
    # request goes. After it, each window's start sends no more than the limit.
    late = [r for r in log if r["status"] == 429 and r["time"] >= log[0]["time"] + 1.0]
    assert late == []
    assert sum(r["status"] == 200 for r in log) > 4 * 2, "enough requests to cross windows"


def test_a_request_dropped_under_a_tight_limit_holds_no_stream_back(sandbox_factory):
    sandbox = customers_only(sandbox_factory, 20)
    sandbox.configure(rate_limit=1, rate_window=1.0)
    sandbox.add_fault({"kind": "drop", "path": "/v1/customers", "skip": 1})
    config = config_for(sandbox.base_url, page_size=10, max_retries=6, backoff_factor=0)
    run = run_cli(config, timeout=60)  # a request counted in flight for ever holds all back
    assert run.returncode == 0, run.stderr[-1000:]
    assert run.ids("customers") == [r["id"] for r in sandbox.records("customers")]


@pytest.mark.parametrize(
    ("headers", "goes_at"),
    [
        ({"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "nan"}, 1000.0),
        ({"X-RateLimit-Remaining": "nan", "X-RateLimit-Reset": "1"}, 1000.0),
        (
            {"X-RateLimit-Limit": "0", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "1"},
            1001.0,
        ),
        (
            {"X-RateLimit-Limit": "nan", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "1"},
            1001.0,
        ),
    ],
    ids=["reset-nan", "remaining-nan", "limit-0", "limit-nan"],
)
def test_rate_limit_headers_that_mean_nothing_hold_no_request_back_for_ever(
    headers: dict[str, str], goes_at: float
) -> None:
    clock = FakeClock()

    def sleep(seconds: float) -> None:
        assert clock.time < 1060, "a request held back a minute by a header"
        clock.sleep(seconds)

    throttle = Throttle(now=clock.now, sleep=sleep)
    throttle.wait()
    answered(throttle, answer(HTTPStatus.OK, **headers))  # a count that means nothing is none
    throttle.wait()
    throttle.wait()
    assert clock.time == goes_at


def test_a_429_pauses_every_stream(sandbox):
    retry_after = 1
    sandbox.add_fault(
        {
            "kind": "status",
            "status": 429,
            "retry_after": retry_after,
            "path": "/v1/customers",
            "skip": 2,
        }
    )
    # The throttle's clock moves only while it holds a stream back; all else takes no time.
    clock = FakeClock()
    sent: list[tuple[float, str]] = []  # in the order the responses came
    refused_after: list[int] = []  # how many responses came before the 429

    def note(response: requests.Response, sent_at: float) -> None:
        if response.status_code == HTTPStatus.TOO_MANY_REQUESTS:
            refused_after.append(len(sent))
        sent.append((sent_at, response.request.path_url.partition("?")[0]))

    throttle = functools.partial(Throttle, now=clock.now, sleep=clock.sleep)
    with mock.patch("tap_analytics.tap.Throttle", throttle), wiretap(note, clock.now):
        run = run_tap(config_for(sandbox.base_url, page_size=10, backoff_factor=0))
    assert len(run.records["customers"]) == sandbox.counts()["customers"]
    (refused,) = refused_after
    refused_at = sent[refused][0]
    during = [path for at, path in sent[refused + 1 :] if at < refused_at + retry_after]
    # Each other stream may send the one request it was about to send as the 429 arrived;
    # without the pause each would send dozens of pages in that second.
    assert len(during) == len(set(during)) <= len(STREAMS) - 1, during
    assert "/v1/customers" not in during


def test_the_throttle_says_once_the_limit_has_held_a_request_back() -> None:
    clock = FakeClock()
    throttle = Throttle(now=clock.now, sleep=clock.sleep)
    throttle.wait()
    answered(
        throttle, answer(HTTPStatus.OK, **{"X-RateLimit-Remaining": "1", "X-RateLimit-Reset": "2"})
    )
    throttle.wait()
    assert not throttle.met_limit  # room was left
    throttle.wait()
    assert throttle.met_limit


def test_the_throttle_says_so_once_the_requests_in_flight_would_spend_the_window() -> None:
    throttle = Throttle()
    for _ in range(4):
        throttle.wait()
    late = answer(HTTPStatus.OK, **{"X-RateLimit-Remaining": "1000", "X-RateLimit-Reset": "1"})
    late.elapsed = dt.timedelta(seconds=0.05)  # 4 in flight: 80 a second
    throttle.observe(late)
    assert not throttle.met_limit
    late.headers["X-RateLimit-Remaining"] = "60"
    throttle.observe(late)
    assert throttle.met_limit
