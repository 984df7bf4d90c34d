"""An API that breaks its order of updated_at: the stream fails by name, its bookmark stays."""

from __future__ import annotations

import typing as t
from datetime import UTC, datetime, timedelta

from tap_analytics.errors import SyncIncompleteError
from tap_analytics.sync import STATE_EVERY, step_back
from tapkit import config_for, run_tap

if t.TYPE_CHECKING:
    from tap_analytics.sandbox.server import SandboxServer

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def at(*seconds: int) -> list[datetime]:
    return [T0 + timedelta(seconds=s) for s in seconds]


def test_step_back_finds_the_first_instant_earlier_than_the_one_before() -> None:
    assert step_back(at(1, 1, 2, 5), None) is None
    assert step_back(at(1, 1, 2, 5), T0) is None
    assert step_back(at(3, 2), None) == 1
    assert step_back(at(3, 4), T0 + timedelta(seconds=5)) == 0  # before the last page's end
    assert step_back([], T0) is None


def test_a_page_that_goes_back_in_time_fails_its_stream_and_keeps_its_bookmark(
    sandbox_factory: t.Callable[..., SandboxServer],
) -> None:
    counts = {"customers": 2 * STATE_EVERY + 300, "sessions": 10, "events": 10, "campaigns": 10}
    sandbox = sandbox_factory(counts=counts)
    everything = [r["id"] for r in sandbox.records("customers")]
    start = {
        "bookmarks": {
            "customers": {
                "replication_key": "updated_at",
                "replication_key_value": "2000-01-01T00:00:00Z",
            }
        }
    }
    # Page 16 of 100 comes newest first: after a STATE at record 1,000 moved the bookmark.
    sandbox.add_fault({"kind": "unsorted", "path": "/v1/customers", "skip": 15})
    run = run_tap(config_for(sandbox.base_url, page_size=100), state=start, expect_failure=True)
    assert isinstance(run.error, SyncIncompleteError)
    message = str(run.error)
    assert "customers" in message
    assert "out of the ascending order" in message
    assert any(
        state["bookmarks"]["customers"].get("replication_key_value", "") > "2000"
        for state in run.states[:-1]
    )  # the bookmark had moved on before the page went back in time
    assert run.last_state["bookmarks"]["customers"] == start["bookmarks"]["customers"]
    assert len(run.ids("customers")) < len(everything)
    # Once the API keeps its order again, a rerun from that state delivers every record.
    sandbox.clear_faults()
    rerun = run_tap(config_for(sandbox.base_url, page_size=100), state=run.last_state)
    assert set(run.ids("customers")) | set(rerun.ids("customers")) == set(everything)
    assert rerun.ids("customers") == everything
