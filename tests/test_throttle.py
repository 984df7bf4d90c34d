"""The client-side throttle: parallel streams stay inside the API's rate-limit window."""

from __future__ import annotations

import collections

from tapkit import config_for, run_tap

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
    sandbox.add_fault(
        {"kind": "status", "status": 429, "retry_after": 1, "path": "/v1/customers", "skip": 2}
    )
    run = run_tap(config_for(sandbox.base_url, page_size=10, backoff_factor=0))
    assert len(run.records["customers"]) == sandbox.counts()["customers"]
    log = sandbox.request_log()
    refused = next(r for r in log if r["status"] == 429)
    during = [r for r in log if refused["time"] < r["time"] < refused["time"] + 0.9]
    # At most the other streams' requests already on their way; without the pause each
    # stream would send dozens of pages in that second.
    assert len(during) <= 3, "no stream may start a request during another's Retry-After"
