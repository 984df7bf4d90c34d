"""The fault matrix: each fault of the contract is survived, or reported clearly, at DEBUG."""

from __future__ import annotations

import itertools
import json
import typing as t

import pytest

from tapkit import CLIENT_SECRET, api_ids, config_for, run_cli

pytestmark = pytest.mark.slow  # a tap process per fault, at DEBUG
STREAMS = ("customers", "sessions", "events", "campaigns")
TOKEN = "/oauth/v1/token"
DEBUG = {"TAP_ANALYTICS_LOG_LEVEL": "DEBUG", "LOGLEVEL": "DEBUG"}

Faults = list[dict[str, t.Any]]
Settings = dict[str, t.Any]

# name: (fault rules, settings) for runs that must deliver everything and exit 0.
SURVIVED: dict[str, tuple[Faults, Settings]] = {
    "429 with Retry-After": ([{"kind": "status", "status": 429, "retry_after": 1, "times": 2}], {}),
    "503 burst of 3": (
        [{"kind": "status", "status": 503, "path": "/v1/customers", "times": 3}],
        {},
    ),
    "500 from the token endpoint": (
        [{"kind": "status", "status": 500, "path": TOKEN, "times": 2}],
        {},
    ),
    "502 from the token endpoint": (
        [{"kind": "status", "status": 502, "path": TOKEN, "times": 2}],
        {},
    ),
    "dropped connections": ([{"kind": "drop", "times": 3}], {}),
    "truncated answer": ([{"kind": "truncated", "times": 2}], {}),
    "answer slower than request_timeout": (
        [{"kind": "slow", "delay": 2.0, "path": "/v1/sessions", "times": 1}],
        {"request_timeout": 0.5},
    ),
    "token revoked mid-stream, twice": (
        [
            {"kind": "revoke", "path": "/v1/events", "skip": 2},
            {"kind": "revoke", "path": "/v1/events", "skip": 6},
        ],
        {},
    ),
    "200 with an HTML body": ([{"kind": "html", "path": "/v1/campaigns", "times": 1}], {}),
    "200 with a body that is not JSON": ([{"kind": "garbage", "times": 1}], {}),
    "200 JSON without data": ([{"kind": "no_data", "path": "/v1/customers", "skip": 1}], {}),
    "200 JSON with data not a list": ([{"kind": "data_not_list", "path": "/v1/events"}], {}),
    "empty pages with a next cursor": ([{"kind": "empty", "skip": 1, "times": 4}], {}),
}

# name: (fault rules, settings, the failing stream, words the last stderr line must hold).
REPORTED: dict[str, tuple[Faults, Settings, str, tuple[str, ...]]] = {
    "503 burst of 4": (
        [{"kind": "status", "status": 503, "path": "/v1/customers", "times": 4}],
        {"max_retries": 3},
        "customers",
        ("503", "unavailable", "/v1/customers", "rerun later"),
    ),
    "record without id": (
        [{"kind": "missing_field", "field": "id", "path": "/v1/sessions", "skip": 1}],
        {},
        "sessions",
        ("no 'id'", "report it"),
    ),
    "record without updated_at": (
        [{"kind": "missing_field", "field": "updated_at", "path": "/v1/events"}],
        {},
        "events",
        ("no 'updated_at'", "report it"),
    ),
    "400": (
        [{"kind": "status", "status": 400, "path": "/v1/campaigns", "times": -1}],
        {},
        "campaigns",
        ("400", "invalid_parameter", "check page_size"),
    ),
    "403": (
        [{"kind": "status", "status": 403, "path": "/v1/customers", "times": -1}],
        {},
        "customers",
        ("403", "forbidden", "grant the client the scope"),
    ),
    "404": (
        [{"kind": "status", "status": 404, "path": "/v1/sessions", "times": -1}],
        {},
        "sessions",
        ("404", "not_found", "check base_url"),
    ),
    "repeated cursor": (
        [{"kind": "repeat_cursor", "path": "/v1/events", "skip": 1, "times": -1}],
        {"page_size": 15},
        "events",
        ("cursor", "second time", "report it"),
    ),
}


def assert_no_secrets(sandbox, run) -> None:
    """Neither the client secret nor any access token may appear in any output."""
    tokens = {r["token"] for r in sandbox.request_log() if r.get("token")}
    output = run.stderr + json.dumps(run.messages)
    assert CLIENT_SECRET not in output
    for token in tokens:
        assert token not in output


@pytest.mark.parametrize("name", SURVIVED)
def test_fault_is_survived_with_every_record_once(sandbox, name):
    faults, settings = SURVIVED[name]
    for fault in faults:
        sandbox.add_fault(fault)
    run = run_cli(config_for(sandbox.base_url, **{"page_size": 40, **settings}), env=DEBUG)
    assert run.returncode == 0, run.stderr[-3000:]
    for stream in STREAMS:
        assert run.ids(stream) == [r["id"] for r in sandbox.records(stream)], stream
    assert "DEBUG" in run.stderr
    assert_no_secrets(sandbox, run)
    sandbox.clear_faults()  # the faults spent or not, so the plain read below sees none
    for stream in STREAMS:
        assert run.ids(stream) == api_ids(sandbox.base_url, stream), stream


@pytest.mark.parametrize("name", REPORTED)
def test_fault_is_reported_naming_stream_cause_and_remedy(sandbox, name):
    faults, settings, failed, words = REPORTED[name]
    for fault in faults:
        sandbox.add_fault(fault)
    config = config_for(sandbox.base_url, **{"page_size": 40, **settings})
    # Failing takes bounded time: a tap that hangs or retries without end times out here.
    run = run_cli(config, env=DEBUG, timeout=60)
    assert run.returncode == 1
    last = run.stderr.strip().splitlines()[-1]
    assert f"({failed})" in last
    for word in words:
        assert word in last
    for stream in set(STREAMS) - {failed}:
        assert run.ids(stream) == [r["id"] for r in sandbox.records(stream)], stream
    assert "DEBUG" in run.stderr
    assert_no_secrets(sandbox, run)


def test_503_burst_gives_up_after_exactly_max_retries(sandbox):
    backoff_factor, max_retries = 0.2, 3
    sandbox.add_fault({"kind": "status", "status": 503, "path": "/v1/customers", "times": -1})
    config = config_for(sandbox.base_url, max_retries=max_retries, backoff_factor=backoff_factor)
    run = run_cli(config)
    tries = [r for r in sandbox.request_log() if r["path"] == "/v1/customers"]
    assert len(tries) == max_retries + 1
    waits = [b["time"] - a["time"] for a, b in itertools.pairwise(tries)]
    expected = [backoff_factor * 2**retry for retry in range(max_retries)]
    assert all(wait >= least for wait, least in zip(waits, expected, strict=True)), waits
    # Waits that ignore backoff_factor for the default (2: 14 s in all) fail; a busy machine,
    # given five times the expected total, does not.
    assert sum(waits) < 5 * sum(expected), waits
    assert run.returncode == 1
