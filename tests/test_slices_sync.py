"""Slices in a run against the sandbox: speed-up, exactness, resume, mutations, rate limits."""

from __future__ import annotations

import random
import threading
import typing as t
from datetime import UTC, datetime, timedelta

import pytest

from tap_analytics.sync import SLICES, STATE_EVERY, AnalyticsStream
from tap_analytics.tap import TapAnalytics
from tapkit import Run, api_ids, catalog_selecting, config_for, customers_only, run_tap, wiretap

if t.TYPE_CHECKING:
    import requests

    from tap_analytics.sandbox.server import SandboxServer

STREAMS = ("customers", "sessions", "events", "campaigns")
Factory = t.Callable[..., "SandboxServer"]


def data_requests(sandbox: SandboxServer, stream: str) -> list[dict[str, t.Any]]:
    return [r for r in sandbox.request_log() if r["path"] == f"/v1/{stream}"]


def only(sandbox: SandboxServer, stream: str, **config: t.Any) -> dict[str, t.Any]:
    """A run's config and catalog for one stream alone."""
    settings = config_for(sandbox.base_url, **config)
    return {"config": settings, "catalog": catalog_selecting(settings, {stream})}


def test_slices_keep_several_requests_in_flight_and_deliver_every_record_once(
    sandbox_factory: Factory,
) -> None:
    sandbox = customers_only(sandbox_factory, 3000)
    sandbox.set_latency(100)
    run = run_tap(**only(sandbox, "customers", max_parallel_requests=8))
    assert sorted(run.ids("customers")) == sorted(r["id"] for r in sandbox.records("customers"))
    in_flight = max(r["in_flight"] for r in data_requests(sandbox, "customers"))
    assert in_flight >= 6  # of 8: one stream read side by side (requests overlap in the API)
    assert SLICES not in run.last_state["bookmarks"]["customers"]  # a state today's tap reads


def test_one_stream_with_more_slices_than_urllib3s_pool_keeps_its_connections(
    sandbox_factory: Factory, caplog: pytest.LogCaptureFixture
) -> None:
    sandbox = customers_only(sandbox_factory, 4000)
    sandbox.set_latency(100)
    run = run_tap(**only(sandbox, "customers", max_parallel_requests=16, page_size=20))
    assert sorted(run.ids("customers")) == sorted(r["id"] for r in sandbox.records("customers"))
    assert max(r["in_flight"] for r in data_requests(sandbox, "customers")) > 10  # the default
    # A pool smaller than the requests in flight closes a connection after each answer.
    assert "pool is full" not in caplog.text


def test_max_parallel_requests_1_is_todays_tap(sandbox: SandboxServer) -> None:
    sandbox.set_latency(20)
    one = run_tap(config_for(sandbox.base_url, page_size=40, max_parallel_requests=1))
    for stream in STREAMS:
        requests_made = data_requests(sandbox, stream)
        assert max(r["in_flight"] for r in requests_made) <= len(STREAMS)
        assert {r["query"]["limit"] for r in requests_made} == {"40"}  # no probes
        assert "updated_since" not in requests_made[0]["query"]
        assert one.ids(stream) == api_ids(sandbox.base_url, stream)  # in the API's order
    assert not any(SLICES in entry for state in one.states for entry in state["bookmarks"].values())
    default = run_tap(config_for(sandbox.base_url, page_size=40))  # the default is 1
    assert default.records == one.records
    assert default.last_state == one.last_state


def test_an_end_date_window_is_split_inside_the_window(sandbox_factory: Factory) -> None:
    sandbox = customers_only(sandbox_factory, 2000)
    sandbox.set_latency(30)
    records = sandbox.records("customers")
    end = records[1500]["updated_at"]
    before = [
        r for r in records if datetime.fromisoformat(r["updated_at"]) < datetime.fromisoformat(end)
    ]
    run = run_tap(**only(sandbox, "customers", max_parallel_requests=6, end_date=end))
    assert sorted(run.ids("customers")) == sorted(r["id"] for r in before)
    assert run.bookmark("customers") == before[-1]["updated_at"]


def resume_after_cut(
    config: dict[str, t.Any], catalog: dict[str, t.Any], full: Run, cut: int
) -> Run:
    """Replay a run killed after `cut` messages: rerun with the last STATE it wrote."""
    states = [m["value"] for m in full.messages[:cut] if m["type"] == "STATE"]
    return run_tap(config, catalog=catalog, state=states[-1] if states else None)


@pytest.mark.parametrize("seed", range(4))
def test_a_sliced_run_cut_anywhere_resumes_with_nothing_lost(
    sandbox_factory: Factory, seed: int
) -> None:
    sandbox = customers_only(sandbox_factory, 4500)
    sandbox.set_latency(5)
    setup = only(sandbox, "customers", max_parallel_requests=6, page_size=50)
    full = run_tap(**setup)
    everything = {r["id"] for r in sandbox.records("customers")}
    assert sorted(full.ids("customers")) == sorted(everything)
    cut = random.Random(seed).randrange(1, len(full.messages))
    before = Run(full.messages[:cut])
    states = before.states
    rerun = resume_after_cut(setup["config"], setup["catalog"], full, cut)
    assert set(before.ids("customers")) | set(rerun.ids("customers")) == everything
    slices = len((states[-1]["bookmarks"].get("customers") or {}).get(SLICES, [])) if states else 0
    reread = len(set(before.ids("customers")) & set(rerun.ids("customers")))
    assert reread <= max(slices, 1) * (STATE_EVERY + 50)  # a checkpoint's worth a slice
    assert SLICES not in rerun.last_state["bookmarks"]["customers"]


def test_records_changed_during_a_sliced_run_end_at_their_newest_version(
    sandbox_factory: Factory,
) -> None:
    sandbox = customers_only(sandbox_factory, 3000)
    sandbox.set_latency(20)
    setup = only(sandbox, "customers", max_parallel_requests=8, page_size=50)
    seen = 0
    lock = threading.Lock()

    def change_records(response: requests.Response, _sent_at: float) -> None:
        nonlocal seen
        if "/v1/customers" not in (response.url or ""):
            return
        with lock:
            seen += 1
            due = seen % 10 == 0
        if due:  # while slices read: moved to now, past every slice
            sandbox.update_records("customers", count=5)

    with wiretap(change_records):
        first = run_tap(**setup)
    # The catch-up (from a moment before the run began) reads alone, after every slice ended.
    log = data_requests(sandbox, "customers")
    recent = datetime.now(UTC) - timedelta(days=1)
    catching_up = [
        i
        for i, r in enumerate(log)
        if datetime.fromisoformat(r["query"].get("updated_since", "2000-01-01T00:00:00Z")) > recent
    ]
    assert catching_up
    assert catching_up == list(range(catching_up[0], len(log)))
    assert log[catching_up[0]]["in_flight"] == 1  # every slice's requests were answered
    second = run_tap(**setup, state=first.last_state)
    last_version: dict[str, str] = {}
    for run in (first, second):
        for record in run.records.get("customers", []):
            last_version[record["id"]] = record["updated_at"]
    assert last_version == {r["id"]: r["updated_at"] for r in sandbox.records("customers")}


def test_an_incremental_sliced_run_with_nothing_changed_writes_no_record(
    sandbox_factory: Factory,
) -> None:
    sandbox = sandbox_factory(
        counts={"customers": 1500, "sessions": 300, "events": 900, "campaigns": 40}
    )
    config = config_for(sandbox.base_url, max_parallel_requests=8, page_size=50)
    first = run_tap(config)
    second = run_tap(config, state=first.last_state)
    assert second.records == {}
    updated = sandbox.update_records("events", count=3)
    third = run_tap(config, state=second.last_state)
    assert set(third.records) == {"events"}
    assert sorted(third.ids("events")) == sorted(r["id"] for r in updated)


def test_slices_share_the_rate_limit(sandbox_factory: Factory) -> None:
    sandbox = sandbox_factory(
        counts={"customers": 1500, "sessions": 400, "events": 800, "campaigns": 40},
        rate_limit=20,
        rate_window=1.0,
    )
    run = run_tap(
        config_for(sandbox.base_url, max_parallel_requests=8, page_size=50, max_retries=8)
    )
    for stream in STREAMS:
        assert sorted(run.ids(stream)) == sorted(r["id"] for r in sandbox.records(stream))
    log = sandbox.request_log()
    limited = sum(r["status"] == 429 for r in log)
    assert limited <= len(log) // 10  # the headers hold every slice back before the limit


def test_a_state_of_the_tap_without_slices_resumes_sliced_and_ends_as_before(
    sandbox_factory: Factory,
) -> None:
    sandbox = customers_only(sandbox_factory, 2500)
    records = sandbox.records("customers")
    bookmark = records[600]["updated_at"]
    old = {
        "bookmarks": {
            "customers": {"replication_key": "updated_at", "replication_key_value": bookmark}
        }
    }
    run = run_tap(**only(sandbox, "customers", max_parallel_requests=8, page_size=50), state=old)
    since = datetime.fromisoformat(bookmark)
    assert sorted(run.ids("customers")) == sorted(
        r["id"] for r in records if datetime.fromisoformat(r["updated_at"]) >= since
    )
    assert (
        run.last_state["bookmarks"]["customers"]["replication_key_value"]
        == records[-1]["updated_at"]
    )
    assert SLICES not in run.last_state["bookmarks"]["customers"]


@pytest.mark.parametrize("slices", [5, [5], [{"since": "yesterday"}], [{"keys": "cus_1"}]])
def test_slices_in_a_state_that_cannot_be_resumed_are_refused_by_name(
    sandbox: SandboxServer, slices: object
) -> None:
    state = {
        "bookmarks": {
            "customers": {"replication_key_value": "2024-01-01T00:00:00Z", SLICES: slices}
        }
    }
    run = run_tap(config_for(sandbox.base_url), state=state, expect_failure=True)
    message = str(run.error)
    assert "slices of stream 'customers'" in message
    assert "remove 'slices'" in message
    assert run.records == {}


def test_a_new_field_met_by_any_slice_comes_after_one_schema(sandbox_factory: Factory) -> None:
    sandbox = customers_only(sandbox_factory, 2000)
    sandbox.set_latency(10)
    since = sandbox.records("customers")[1000]["updated_at"]
    sandbox.configure(
        field_overrides=[{"resource": "customers", "name": "tier", "value": "gold", "since": since}]
    )
    run = run_tap(**only(sandbox, "customers", max_parallel_requests=8, page_size=50))
    kinds = [
        ("tier" in m["schema"]["properties"]) if m["type"] == "SCHEMA" else ("tier" in m["record"])
        for m in run.messages
        if m.get("stream") == "customers" and m["type"] in {"SCHEMA", "RECORD"}
    ]
    schemas = [m for m in run.messages if m["type"] == "SCHEMA" and m["stream"] == "customers"]
    assert ["tier" in m["schema"]["properties"] for m in schemas] == [False, True]
    first_with_field = next(
        i for i, m in enumerate(run.messages) if m["type"] == "RECORD" and "tier" in m["record"]
    )
    widened = next(
        i
        for i, m in enumerate(run.messages)
        if m["type"] == "SCHEMA" and "tier" in m["schema"]["properties"]
    )
    assert widened < first_with_field
    assert sum(kinds) > 1


def test_slices_share_one_token_that_is_renewed_when_revoked(sandbox_factory: Factory) -> None:
    sandbox = customers_only(sandbox_factory, 2000)
    # Often, for 8 at once; 3 times at most, so that no request or run of unused tokens can
    # reach the tap's limits (a request is rejected at most once per revocation) by chance.
    sandbox.add_fault({"kind": "revoke", "every": 20, "times": 3})
    sandbox.set_latency(10)
    run = run_tap(**only(sandbox, "customers", max_parallel_requests=8, page_size=50))
    assert sorted(run.ids("customers")) == sorted(r["id"] for r in sandbox.records("customers"))
    log = sandbox.request_log()
    rejected = sum(r["status"] == 401 for r in log)
    tokens = sum(r["path"] == "/oauth/v1/token" for r in log)
    assert rejected > 0
    assert tokens <= rejected + 1  # one new token serves every slice that saw it rejected


def test_stream_maps_apply_to_every_slice(sandbox_factory: Factory) -> None:
    sandbox = customers_only(sandbox_factory, 1500)
    sandbox.set_latency(10)
    maps = {"customers": {"key_copy": "id"}}
    run = run_tap(
        **only(sandbox, "customers", max_parallel_requests=8, page_size=50, stream_maps=maps)
    )
    records = run.records["customers"]
    assert sorted(r["id"] for r in records) == sorted(r["id"] for r in sandbox.records("customers"))
    assert all(r["key_copy"] == r["id"] for r in records)


def test_a_resumed_sliced_sync_shows_the_pacing_its_first_reads_waits(
    sandbox: SandboxServer,
) -> None:
    entries = [
        {"since": "2024-01-01T00:00:00Z", "until": "2024-06-01T00:00:00Z"},
        {"since": "2024-06-01T00:00:00Z", "until": None, "catch_up": True},
    ]
    state = {
        "bookmarks": {
            "customers": {
                "replication_key": "updated_at",
                "replication_key_value": "2024-01-01T00:00:00Z",
                SLICES: entries,
            }
        }
    }
    tap = TapAnalytics(config=config_for(sandbox.base_url, max_parallel_requests=4), state=state)
    stream = tap.streams["customers"]
    assert isinstance(stream, AnalyticsStream)
    sync = stream.begin_sync()
    assert sync.sliced
    assert [read.catch_up for read in sync.reads] == [False, True]
    assert sync.reads[0].clock is sync.clock
