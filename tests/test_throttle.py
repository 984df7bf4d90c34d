"""The client-side throttle: parallel streams stay inside the API's rate-limit window."""

from __future__ import annotations

import collections
import time
import typing as t
from http import HTTPStatus

from tapkit import config_for, run_tap, wiretap

if t.TYPE_CHECKING:
    import requests

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
    sent: list[tuple[float, str]] = []
    refused_at: list[float] = []

    def note(response: requests.Response, sent_at: float) -> None:
        if response.status_code == HTTPStatus.TOO_MANY_REQUESTS:
            refused_at.append(time.monotonic())
        sent.append((sent_at, response.request.path_url.partition("?")[0]))

    with wiretap(note):
        run = run_tap(config_for(sandbox.base_url, page_size=10, backoff_factor=0))
    assert len(run.records["customers"]) == sandbox.counts()["customers"]
    (refused,) = refused_at
    during = [path for at, path in sent if refused < at < refused + retry_after]
    # Each other stream may send the one request it was about to send as the 429 arrived;
    # without the pause each would send dozens of pages in that second.
    assert len(during) == len(set(during)) <= len(STREAMS) - 1, during
    assert "/v1/customers" not in during
