"""Timestamps: RFC 3339 date-times with an offset, from settings, state and declarations alike."""

from __future__ import annotations

import typing as t
from datetime import UTC, datetime, timedelta

import pytest

from tap_analytics.state import BadBookmarkError, parse_instant, within_clock
from tapkit import config_for, run_cli, run_tap

ACCEPTED = {
    "2024-01-01T00:00:00Z": datetime(2024, 1, 1, tzinfo=UTC),
    "2024-01-01t00:00:00z": datetime(2024, 1, 1, tzinfo=UTC),  # RFC 3339 section 5.6 NOTE
    "2024-01-01T02:30:00+02:30": datetime(2024, 1, 1, tzinfo=UTC),
    "2023-12-31T19:00:00-05:00": datetime(2024, 1, 1, tzinfo=UTC),
    "2024-01-01T00:00:00.25Z": datetime(2024, 1, 1, 0, 0, 0, 250000, tzinfo=UTC),
}
REFUSED = [
    "2024-01-01T00:00:00",  # no offset
    "2024-01-01",  # a date
    "2024-W01-1T00:00:00Z",  # an ISO week date
    "2024-01-01 00:00:00Z",  # a space for T
    "20240101T000000Z",  # ISO 8601 basic format
    "2024-13-45T00:00:00Z",  # no such day
    "2024-01-01T00:00:00+24:00",  # no such offset
    "2024-01-01T00:00:00+0000",  # offset without a colon
    "\uff12\uff10\uff12\uff14-01-01T00:00:00Z",  # full-width digits
]
BAD_BOOKMARKS = ["2024-01-01", "2024-01-01T00:00:00"]


def api_requests(sandbox) -> list[dict[str, t.Any]]:
    return [r for r in sandbox.request_log() if r["path"].startswith("/v1/")]


@pytest.mark.parametrize("value", ACCEPTED)
def test_an_rfc_3339_date_time_is_read_as_its_instant(value):
    assert parse_instant(value, what="x") == ACCEPTED[value]


@pytest.mark.parametrize("value", [*REFUSED, 1714557600, None])
def test_anything_else_is_refused_naming_where_it_came_from(value):
    with pytest.raises(BadBookmarkError, match=r"^the bookmark of stream 'events'"):
        parse_instant(value, what="the bookmark of stream 'events'")


@pytest.mark.parametrize("value", REFUSED)
def test_a_start_date_that_is_not_a_date_time_is_refused_before_any_request(sandbox, value):
    run = run_cli(config_for(sandbox.base_url, start_date=value))
    assert run.returncode == 1
    last = run.stderr.strip().splitlines()[-1]
    assert last.count("Setting 'start_date'") == 1  # said once, not once per stream
    assert "state" not in last  # it came from the settings
    assert "Traceback" not in run.stderr
    assert sandbox.request_log() == []


def test_a_lower_case_start_date_is_accepted_and_sent_as_the_api_spells_it(sandbox):
    run = run_tap(config_for(sandbox.base_url, start_date="2024-01-01t00:00:00z"))
    assert len(run.records["customers"]) == sandbox.counts()["customers"]
    sent = {r["query"].get("updated_since") for r in api_requests(sandbox)}
    assert sent == {"2024-01-01T00:00:00Z"}


@pytest.mark.parametrize("value", BAD_BOOKMARKS)
def test_a_bookmark_that_is_not_a_date_time_is_refused_before_any_request(sandbox, value):
    state = {"bookmarks": {"sessions": {"replication_key_value": value}}}
    run = run_cli(config_for(sandbox.base_url), state=state)
    assert run.returncode == 1
    last = run.stderr.strip().splitlines()[-1]
    assert "the bookmark of stream 'sessions'" in last
    assert "fix or remove it in the state" in last
    assert api_requests(sandbox) == []


@pytest.mark.parametrize("value", BAD_BOOKMARKS)
def test_a_declared_initial_value_that_is_not_a_date_time_is_refused(sandbox, value):
    incremental = {"cursor_path": "updated_at", "start_param": "updated_since"}
    declared: dict[str, t.Any] = {"name": "campaigns", "endpoint": {"path": "/v1/campaigns"}}
    declared["endpoint"]["incremental"] = incremental | {"initial_value": value}
    run = run_cli(config_for(sandbox.base_url, resources=[declared]))
    assert run.returncode == 1
    last = run.stderr.strip().splitlines()[-1]
    assert "The initial_value declared for resource 'campaigns'" in last
    assert "state" not in last
    assert sandbox.request_log() == []


def test_a_bookmark_later_than_now_is_a_warning_naming_stream_and_bookmark(sandbox):
    future = (datetime.now(UTC) + timedelta(days=3650)).strftime("%Y-%m-%dT%H:%M:%SZ")
    state = {"bookmarks": {"events": {"replication_key_value": future}}}
    run = run_cli(config_for(sandbox.base_url), state=state)
    assert run.returncode == 0
    warnings = [line for line in run.stderr.splitlines() if "WARNING" in line]
    assert any("stream 'events'" in w and future in w and "later than now" in w for w in warnings)
    assert not any("stream 'customers'" in w for w in warnings)
    assert run.records.get("events", []) == []


def test_a_bookmark_may_lead_the_clock_by_5_minutes_not_more() -> None:
    now = datetime.now(UTC)
    # A minute of margin each side, so that the time the test takes does not matter.
    instants = [now, now + timedelta(minutes=4), now + timedelta(minutes=6)]
    assert within_clock(instants) == 2
