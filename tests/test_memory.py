"""What a run holds on to: pages no longer than they are written, and nothing a request."""

from __future__ import annotations

import io
import platform
import time
import typing as t
import weakref

from tap_analytics import cli, transport
from tap_analytics.pages import WaitClock, fetched_pages
from tap_analytics.sync import AnalyticsStream
from tap_analytics.tap import TapAnalytics
from tapkit import catalog_selecting, config_for, customers_only, parse_lines

if t.TYPE_CHECKING:
    import socket

    import pytest
    import requests

    from tap_analytics.sandbox.server import SandboxServer

    Factory = t.Callable[..., SandboxServer]


def test_a_page_is_let_go_before_the_next_request(
    sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Each of 16 slices holding its last page and answer through its next request doubled
    # what a sliced run holds (peak RSS 65 MB at 4 x 200,000 records; 59 MB without).
    tap = TapAnalytics(config=config_for(sandbox.base_url, page_size=10), validate_config=True)
    stream = t.cast("AnalyticsStream", tap.streams["customers"])
    earlier: list[weakref.ref[object]] = []
    alive_at_request: list[int] = []
    send = AnalyticsStream._request

    def request(
        self: AnalyticsStream, prepared: requests.PreparedRequest, context: object
    ) -> requests.Response:
        alive_at_request.append(sum(ref() is not None for ref in earlier))
        response = send(self, prepared, context)  # type: ignore[arg-type]
        earlier.append(weakref.ref(response))
        return response

    monkeypatch.setattr(AnalyticsStream, "_request", request)
    pages = fetched_pages(stream, None, WaitClock())
    for _ in range(3):
        page = next(pages)
        earlier.append(weakref.ref(page))
        del page  # written: nothing else may keep it
    next(pages)
    assert alive_at_request == [0, 0, 0, 0]


class Sock:
    """A socket stand-in the watchdog would shut down."""

    def shutdown(self, how: int) -> None:
        raise AssertionError(how)


def test_the_watchdog_forgets_answers_that_came_in_time() -> None:
    dog = transport.Watchdog()
    transport.REQUEST.deadline = time.monotonic() + 3600  # nothing here is overdue
    try:
        with dog.watching(t.cast("socket.socket", Sock())):  # a long request, at the heap's top
            for _ in range(10_000):
                with dog.watching(t.cast("socket.socket", Sock())):
                    pass
            # Left to the watchdog's thread until their deadlines, 10,000 would pile up.
            assert len(dog._due) <= 2 * transport.FORGET_IN_BULK
    finally:
        transport.REQUEST.deadline = None
    assert not dog._due


def test_the_run_shares_two_malloc_arenas_where_malloc_is_glibcs() -> None:
    assert cli.share_malloc_arenas() is (platform.libc_ver()[0] == "glibc")


def test_a_sliced_sync_keeps_only_the_slices_still_to_read(sandbox_factory: Factory) -> None:
    sandbox = customers_only(sandbox_factory, 3000)
    sandbox.set_latency(50)
    config = config_for(sandbox.base_url, max_parallel_requests=8)
    catalog = catalog_selecting(config, {"customers"})
    tap = TapAnalytics(config=config, catalog=catalog, validate_config=True)
    tap.writer.out = io.BytesIO()
    tap.sync_all()
    probes = [r for r in sandbox.request_log() if r["query"].get("limit") == "1"]
    assert probes  # the range was cut into slices
    sync = t.cast("AnalyticsStream", tap.streams["customers"]).current
    assert sync is not None
    assert sync.sliced
    assert sync.reads == []  # each finished slice was let go as it ended
    last = parse_lines(tap.writer.out.getvalue())
    bookmark = [m for m in last if m["type"] == "STATE"][-1]["value"]["bookmarks"]["customers"]
    assert sync.delivered is not None
    assert bookmark["replication_key_value"] == sync.delivered.value


def test_a_streams_records_go_out_a_page_at_a_time(
    sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Held until each STATE (1,000 records), 4 streams' lines were 1.4 MB more peak RSS.
    config = config_for(sandbox.base_url, page_size=10)
    tap = TapAnalytics(config=config, catalog=catalog_selecting(config, {"customers"}))
    out = io.BytesIO()
    tap.writer.out = out
    written_at_request: list[int] = []
    send = AnalyticsStream._request

    def request(
        self: AnalyticsStream, prepared: requests.PreparedRequest, context: object
    ) -> requests.Response:
        written_at_request.append(out.getvalue().count(b'"type":"RECORD"'))
        return send(self, prepared, context)  # type: ignore[arg-type]

    monkeypatch.setattr(AnalyticsStream, "_request", request)
    tap.sync_all()
    assert written_at_request[:4] == [0, 10, 20, 30]
