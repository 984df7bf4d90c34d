"""The client-side throttle: parallel streams stay inside the API's rate-limit window."""

from __future__ import annotations

import collections
import datetime as dt
import functools
from http import HTTPStatus
from unittest import mock

import requests

from tap_analytics.throttle import Throttle
from tapkit import FakeClock, config_for, run_tap, wiretap

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


def test_a_retry_after_holds_requests_back_that_long() -> None:
    clock = FakeClock()
    throttle = Throttle(concurrency=4, now=clock.now, sleep=clock.sleep)
    throttle.wait()
    assert clock.time == 1000.0, "no wait before any answer"
    throttle.observe(answer(HTTPStatus.TOO_MANY_REQUESTS, **{"Retry-After": "3"}))
    throttle.wait()
    assert clock.time == 1003.0
    throttle.wait()
    assert clock.time == 1003.0, "the pause is over"


def test_requests_past_what_the_window_allows_wait_for_its_reset() -> None:
    clock = FakeClock()
    throttle = Throttle(concurrency=4, now=clock.now, sleep=clock.sleep)
    throttle.wait()
    throttle.observe(
        answer(HTTPStatus.OK, **{"X-RateLimit-Remaining": "3", "X-RateLimit-Reset": "2"})
    )
    for _ in range(3):  # the three the window still allows go at once
        throttle.wait()
    assert clock.time == 1000.0
    throttle.wait()  # a fourth waits for the window to reset
    assert clock.time == 1002.0


def test_requests_in_flight_take_from_what_the_window_allows() -> None:
    clock = FakeClock()
    throttle = Throttle(concurrency=4, now=clock.now, sleep=clock.sleep)
    for _ in range(4):
        throttle.wait()
    # One answer says 3 are left, with 3 requests still unanswered: none may go.
    throttle.observe(
        answer(HTTPStatus.OK, **{"X-RateLimit-Remaining": "3", "X-RateLimit-Reset": "2"})
    )
    throttle.wait()
    assert clock.time == 1002.0


def test_once_every_request_is_answered_one_goes_alone_to_learn_what_is_left() -> None:
    clock = FakeClock()
    throttle = Throttle(concurrency=4, now=clock.now, sleep=clock.sleep)
    for _ in range(4):
        throttle.wait()
    left = {"X-RateLimit-Remaining": "2", "X-RateLimit-Reset": "2"}
    for _ in range(4):  # the API had counted all four when it answered each
        throttle.observe(answer(HTTPStatus.OK, **left))
    throttle.wait()  # answers given with others in flight say too little: one goes alone
    assert clock.time == 1000.0
    throttle.observe(answer(HTTPStatus.OK, **{**left, "X-RateLimit-Remaining": "1"}))
    throttle.wait()  # the answer to a request alone says exactly what is left
    assert clock.time == 1000.0
    throttle.observe(answer(HTTPStatus.OK, **{**left, "X-RateLimit-Remaining": "0"}))
    throttle.wait()
    assert clock.time == 1002.0


def test_an_older_answer_that_comes_last_sends_none_alone_past_the_window() -> None:
    clock = FakeClock()
    throttle = Throttle(concurrency=4, now=clock.now, sleep=clock.sleep)
    throttle.wait()
    window = {"X-RateLimit-Reset": "2"}
    throttle.observe(answer(HTTPStatus.OK, **window, **{"X-RateLimit-Remaining": "2"}))
    throttle.wait()  # the API counts it: 1 left
    throttle.wait()  # the API counts it: 0 left
    # The second request's answer overtakes the first's: the window is spent.
    throttle.observe(answer(HTTPStatus.OK, **window, **{"X-RateLimit-Remaining": "0"}))
    throttle.observe(answer(HTTPStatus.OK, **window, **{"X-RateLimit-Remaining": "1"}))
    throttle.wait()  # the least the answers said is what is left: wait for the reset
    assert clock.time == 1002.0


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
    throttle = Throttle(concurrency=4, now=clock.now, sleep=clock.sleep)
    throttle.wait()
    throttle.observe(
        answer(HTTPStatus.OK, **{"X-RateLimit-Remaining": "1", "X-RateLimit-Reset": "2"})
    )
    throttle.wait()
    assert not throttle.met_limit  # room was left
    throttle.wait()
    assert throttle.met_limit


def test_the_throttle_says_so_once_the_requests_in_flight_would_spend_the_window() -> None:
    throttle = Throttle(concurrency=4)
    for _ in range(4):
        throttle.wait()
    late = answer(HTTPStatus.OK, **{"X-RateLimit-Remaining": "1000", "X-RateLimit-Reset": "1"})
    late.elapsed = dt.timedelta(seconds=0.05)  # 4 in flight: 80 a second
    throttle.observe(late)
    assert not throttle.met_limit
    late.headers["X-RateLimit-Remaining"] = "60"
    throttle.observe(late)
    assert throttle.met_limit
