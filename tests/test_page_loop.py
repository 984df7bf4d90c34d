"""The record loop a page at a time: a refused record stops its page exactly where it is."""

from __future__ import annotations

import copy
import io
import typing as t
from datetime import UTC, datetime

import pytest

from tap_analytics import pages as pages_module
from tap_analytics.errors import BadPageError
from tap_analytics.state import BadBookmarkError
from tap_analytics.sync import STATE_EVERY, AnalyticsStream
from tap_analytics.tap import TapAnalytics
from tapkit import config_for, parse_lines

if t.TYPE_CHECKING:
    from collections.abc import Iterator

    from singer_sdk.helpers.types import Context

    from tap_analytics.sandbox.server import SandboxServer
    from tap_analytics.sync_state import Read

Page = list[t.Any]


def sync_pages(
    sandbox: SandboxServer, pages: list[Page], monkeypatch: pytest.MonkeyPatch, **config: t.Any
) -> tuple[list[dict[str, t.Any]], BaseException | None]:
    """Sync 'customers' from the given pages; return its messages and how the sync ended."""

    def given_pages(
        self: AnalyticsStream, context: Context | None, read: Read
    ) -> Iterator[pages_module.Page]:
        for page in copy.deepcopy(pages):
            yield pages_module.Page(page, datetime.now(UTC))

    monkeypatch.setattr(AnalyticsStream, "_read_pages", given_pages)
    tap = TapAnalytics(config=config_for(sandbox.base_url, **config))
    out = tap.writer.out = io.BytesIO()
    failure = None
    try:
        tap.streams["customers"].sync()
    except Exception as exc:  # noqa: BLE001 - returned for the test to inspect
        failure = exc
    return parse_lines(out.getvalue()), failure


def ids(messages: list[dict[str, t.Any]]) -> list[str]:
    return [m["record"]["id"] for m in messages if m["type"] == "RECORD"]


def last_bookmark(messages: list[dict[str, t.Any]]) -> str | None:
    states = [m["value"] for m in messages if m["type"] == "STATE"]
    entry = states[-1]["bookmarks"].get("customers", {})
    return t.cast("str | None", entry.get("replication_key_value"))


@pytest.fixture
def records(sandbox: SandboxServer) -> list[dict[str, t.Any]]:
    return sandbox.records("customers")[:30]


@pytest.mark.parametrize(
    ("spoil", "words"),
    [
        (lambda r: r.pop("id"), "has no 'id'"),
        (lambda r: r.update(id=None), "has no 'id'"),
        (lambda r: r.pop("updated_at"), "has no 'updated_at'"),
        (lambda r: r.update(updated_at="2024-13-01T00:00:00Z"), "not an RFC 3339 timestamp"),
        (lambda r: r.update(updated_at="yesterday"), "not an RFC 3339 timestamp"),
        (lambda r: r.update(updated_at=17), "must be an RFC 3339 timestamp string"),
    ],
    ids=["no id", "null id", "no updated_at", "month 13", "yesterday", "a number"],
)
def test_a_refused_record_ends_the_stream_after_the_records_before_it(
    sandbox: SandboxServer,
    records: list[dict[str, t.Any]],
    monkeypatch: pytest.MonkeyPatch,
    spoil: t.Callable[[dict[str, t.Any]], object],
    words: str,
) -> None:
    spoil(records[14])
    messages, failure = sync_pages(
        sandbox, [records[:10], records[10:20], records[20:]], monkeypatch
    )
    assert isinstance(failure, BadPageError | BadBookmarkError)
    assert words in str(failure)
    # Nothing before it is lost, nothing after it is written, and the bookmark covers only
    # what was written.
    assert ids(messages) == [r["id"] for r in records[:14]]
    assert last_bookmark(messages) == records[13]["updated_at"]


def test_a_record_that_is_not_an_object_is_refused_by_what_it_is(
    sandbox: SandboxServer, records: list[dict[str, t.Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    page: Page = [*records[:5], ["not", "an", "object"], *records[5:10]]
    messages, failure = sync_pages(sandbox, [page], monkeypatch)
    assert isinstance(failure, BadPageError)
    assert "a record is not an object" in str(failure)
    assert ids(messages) == [r["id"] for r in records[:5]]


def test_the_bookmark_is_the_latest_instant_not_the_latest_string(
    sandbox: SandboxServer, records: list[dict[str, t.Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    page = records[:3]
    page[0]["updated_at"] = "2024-05-01t11:00:00z"  # lower case: still RFC 3339, last as text
    page[1]["updated_at"] = "2024-05-01T13:30:00+02:00"  # 11:30Z: after 12:00Z as text
    page[2]["updated_at"] = "2024-05-01T12:00:00Z"
    messages, failure = sync_pages(sandbox, [page], monkeypatch)
    assert failure is None
    assert ids(messages) == [r["id"] for r in page]
    assert last_bookmark(messages) == "2024-05-01T12:00:00Z"


def test_the_window_ends_inside_a_page(
    sandbox: SandboxServer, records: list[dict[str, t.Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    end = records[17]["updated_at"]
    before = [r for r in records if r["updated_at"] < end]
    messages, failure = sync_pages(
        sandbox, [records[:10], records[10:20], records[20:]], monkeypatch, end_date=end
    )
    assert failure is None
    assert ids(messages) == [r["id"] for r in before]
    assert last_bookmark(messages) == before[-1]["updated_at"]


def test_state_comes_exactly_every_state_every_records_whatever_the_page_size(
    sandbox: SandboxServer, records: list[dict[str, t.Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    pages = [[dict(records[0], id=f"cus_{p}_{i}") for i in range(70)] for p in range(40)]
    messages, failure = sync_pages(sandbox, pages, monkeypatch)
    assert failure is None
    kinds = [m["type"] for m in messages if m["type"] in {"RECORD", "STATE"}]
    runs = "".join("R" if kind == "RECORD" else "S" for kind in kinds).split("S")
    assert [len(run) for run in runs if run] == [
        STATE_EVERY,
        STATE_EVERY,
        40 * 70 - 2 * STATE_EVERY,
    ]
