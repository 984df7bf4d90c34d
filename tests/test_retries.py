"""Retries: transient statuses and connection faults, Retry-After, giving up, fatal 4xx."""

from __future__ import annotations

import time
import typing as t

import pytest

from tapkit import config_for, run_cli, run_tap


def data_requests(sandbox, path: str) -> list[dict[str, t.Any]]:
    return [r for r in sandbox.request_log() if r["path"] == path]


@pytest.mark.parametrize("status", [429, 500, 502, 503])
def test_transient_status_is_retried_and_nothing_lost(sandbox, status):
    sandbox.add_fault(
        {"kind": "status", "status": status, "path": "/v1/customers", "skip": 2, "times": 3}
    )
    run = run_tap(config_for(sandbox.base_url, page_size=40))
    assert run.ids("customers") == [r["id"] for r in sandbox.records("customers")]
    statuses = [r["status"] for r in data_requests(sandbox, "/v1/customers")]
    assert statuses.count(status) == 3


@pytest.mark.parametrize("kind", ["drop", "truncated", "garbage", "html"])
def test_broken_answers_are_retried(sandbox, kind):
    sandbox.add_fault({"kind": kind, "path": "/v1/sessions", "skip": 1, "times": 2})
    run = run_tap(config_for(sandbox.base_url, page_size=40))
    assert run.ids("sessions") == [r["id"] for r in sandbox.records("sessions")]


def test_answer_slower_than_request_timeout_is_retried(sandbox):
    sandbox.add_fault({"kind": "slow", "path": "/v1/campaigns", "delay": 2.0, "times": 1})
    run = run_tap(config_for(sandbox.base_url, request_timeout=0.5))
    assert run.ids("campaigns") == [r["id"] for r in sandbox.records("campaigns")]


def test_retry_after_is_obeyed(sandbox):
    sandbox.add_fault(
        {"kind": "status", "status": 429, "path": "/v1/campaigns", "retry_after": 1, "times": 1}
    )
    config = config_for(sandbox.base_url, backoff_factor=0, max_parallel_streams=1)
    started = time.monotonic()
    run = run_tap(config)
    assert time.monotonic() - started >= 1.0
    assert len(run.records["campaigns"]) == sandbox.counts()["campaigns"]


def test_gives_up_after_max_retries_with_a_clear_error(sandbox):
    sandbox.add_fault({"kind": "status", "status": 503, "path": "/v1/events", "times": -1})
    run = run_cli(config_for(sandbox.base_url, max_retries=2))
    assert run.returncode == 1
    last = run.stderr.strip().splitlines()[-1]
    for part in ("events", "503", "unavailable", "/v1/events"):
        assert part in last
    assert len(data_requests(sandbox, "/v1/events")) == 3
    for stream in ("customers", "sessions", "campaigns"):
        assert len(run.records[stream]) == sandbox.counts()[stream]


@pytest.mark.parametrize(
    ("status", "code"), [(400, "invalid_parameter"), (403, "forbidden"), (404, "not_found")]
)
def test_other_client_errors_fail_at_once(sandbox, status, code):
    sandbox.add_fault({"kind": "status", "status": status, "path": "/v1/customers", "times": -1})
    run = run_tap(config_for(sandbox.base_url), expect_failure=True)
    assert len(data_requests(sandbox, "/v1/customers")) == 1
    message = str(run.error)
    for part in ("customers", str(status), code, "/v1/customers"):
        assert part in message
    assert "Bearer" not in message
