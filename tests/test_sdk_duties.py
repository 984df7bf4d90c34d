"""What the SDK's replaced loops did and the tap still does: post_process, the starting value,
sync costs, and the SDK's own checks of its built-in settings.
"""

from __future__ import annotations

import io
import logging
import typing as t
from datetime import datetime

import pytest
from typing_extensions import override

from tap_analytics.sync import STATE_EVERY, AnalyticsStream
from tap_analytics.tap import TapAnalytics
from tapkit import CLIENT_ID, Run, catalog_selecting, config_for, parse_lines, run_cli

if t.TYPE_CHECKING:
    from collections.abc import Callable

    import requests
    from singer_sdk.helpers.types import Context

    from tap_analytics.sandbox import SandboxServer

STREAMS = ("customers", "sessions", "events", "campaigns")
PATHS: dict[str, dict[str, t.Any]] = {
    "verbatim": {},
    "through the SDK's mapper": {"stream_maps": {"*": {}}},
}
PROBLEM_LEVELS = ("| WARNING ", "| ERROR ", "| CRITICAL ")


def dropped(record: dict[str, t.Any]) -> bool:
    """The records the test subclass's post_process drops."""
    return str(record["id"]).endswith(("0", "5"))


class TrimmedStream(AnalyticsStream):
    """Drops some records and upper-cases the ids of the others."""

    @override
    def post_process(
        self, row: dict[str, t.Any], context: Context | None = None
    ) -> dict[str, t.Any] | None:
        return None if dropped(row) else {**row, "id": str(row["id"]).upper()}


class UndatedDroppingStream(AnalyticsStream):
    """Drops records without an updated_at, as the SDK documents for invalid records."""

    @override
    def post_process(
        self, row: dict[str, t.Any], context: Context | None = None
    ) -> dict[str, t.Any] | None:
        return row if row.get("updated_at") else None


class CostedStream(AnalyticsStream):
    """Counts one cost unit per request."""

    @override
    def calculate_sync_cost(
        self,
        request: requests.PreparedRequest,
        response: requests.Response,
        context: Context | None,
    ) -> dict[str, int]:
        return {"requests": 1}


def sync_with(
    stream_class: type[AnalyticsStream], config: dict[str, t.Any], **kwargs: t.Any
) -> Run:
    """Sync in this process with every stream built as `stream_class`."""

    class SubclassTap(TapAnalytics):
        @override
        def discover_streams(self) -> list[AnalyticsStream]:
            return [
                stream_class(self, stream.resource, stream.schema, self.run)
                for stream in super().discover_streams()
            ]

    tap = SubclassTap(config=config, **kwargs)
    out = io.BytesIO()
    tap.writer.out = out
    tap.sync_all()
    return Run(parse_lines(out.getvalue()))


def latest(values: list[str]) -> str:
    """The latest of some RFC 3339 timestamps, as an instant."""
    return max(values, key=datetime.fromisoformat)


# post_process


@pytest.mark.parametrize("path", PATHS)
def test_a_subclass_post_process_drops_and_changes_records(
    sandbox: SandboxServer, path: str
) -> None:
    run = sync_with(TrimmedStream, config_for(sandbox.base_url, **PATHS[path]))
    for stream in STREAMS:
        kept = [record for record in sandbox.records(stream) if not dropped(record)]
        assert 0 < len(kept) < sandbox.counts()[stream]
        assert run.ids(stream) == [record["id"].upper() for record in kept]
        assert run.bookmark(stream) == latest([record["updated_at"] for record in kept])


def test_post_process_sees_records_before_the_tap_refuses_them(sandbox: SandboxServer) -> None:
    sandbox.add_fault(
        {"kind": "missing_field", "field": "updated_at", "path": "/v1/customers", "times": 1}
    )
    run = sync_with(UndatedDroppingStream, config_for(sandbox.base_url))
    listed = [record["id"] for record in sandbox.records("customers")]
    kept = run.ids("customers")
    assert len(set(listed) - set(kept)) == 1, "one record was served without updated_at"
    assert kept == [record_id for record_id in listed if record_id in kept]


# The starting replication value


def test_the_starting_value_is_in_state_while_a_stream_runs_and_gone_after(
    sandbox_factory: Callable[..., SandboxServer],
) -> None:
    sandbox = sandbox_factory(counts={"customers": STATE_EVERY + 60})
    records = sandbox.records("customers")
    bookmark = records[20]["updated_at"]  # later than start_date: the run starts from it
    config = config_for(sandbox.base_url, start_date="2000-01-01T00:00:00Z")
    state = {
        "bookmarks": {
            "customers": {"replication_key": "updated_at", "replication_key_value": bookmark}
        }
    }
    tap = TapAnalytics(config=config, state=state, catalog=catalog_selecting(config, {"customers"}))
    tap.writer.out = out = io.BytesIO()
    tap.sync_all()
    messages = parse_lines(out.getvalue())
    first_record = next(i for i, m in enumerate(messages) if m["type"] == "RECORD")
    states = [
        m["value"]["bookmarks"]["customers"]
        for m in messages[first_record:]
        if m["type"] == "STATE"
    ]
    assert len(states) >= 2, "a STATE is written while the stream runs, and one at its end"
    for during in states[:-1]:
        assert during["starting_replication_value"] == bookmark
    assert "starting_replication_value" not in states[-1]
    assert states[-1]["replication_key_value"] == latest([r["updated_at"] for r in records])


# Sync costs


def test_sync_costs_are_logged_for_every_stream(
    sandbox: SandboxServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    sync_with(CostedStream, config_for(sandbox.base_url, page_size=20))
    for stream in STREAMS:
        requests_made = sum(1 for r in sandbox.request_log() if r["path"] == f"/v1/{stream}")
        assert requests_made > 1
        assert f"Total Sync costs for stream {stream}: {{'requests': {requests_made}}}" in (
            caplog.text
        )


# The SDK's own checks of its built-in settings


@pytest.mark.parametrize(
    ("setting", "value"),
    [("stream_maps", "nonsense"), ("flattening_max_depth", "deep")],
)
def test_the_sdks_settings_are_checked_with_one_line(
    sandbox: SandboxServer, setting: str, value: str
) -> None:
    run = run_cli(config_for(sandbox.base_url, **{setting: value}))
    problems = [
        line for line in run.stderr.splitlines() if any(level in line for level in PROBLEM_LEVELS)
    ]
    assert run.returncode == 1
    assert len(problems) == 1, problems
    assert f"'{setting}'" in problems[0]
    assert "Traceback" not in run.stderr
    assert sandbox.request_log() == [], "nothing may be requested with bad settings"


def test_a_refused_secret_in_the_client_block_is_not_shown() -> None:
    secret = 7390215846
    config = {
        "client": {
            "base_url": "http://127.0.0.1:9",
            "auth": {"client_id": CLIENT_ID, "client_secret": secret},
        }
    }
    run = run_cli(config)
    assert run.returncode == 1
    assert "'client.auth.client_secret'" in run.stderr
    assert str(secret) not in run.stderr
