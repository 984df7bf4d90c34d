"""Page prefetch: a thread per stream requests each next page as soon as its cursor is known."""

from __future__ import annotations

import contextlib
import queue
import threading
import typing as t
from dataclasses import dataclass
from datetime import UTC, datetime

from tap_analytics.errors import SyncInterruptedError

if t.TYPE_CHECKING:
    from collections.abc import Iterator

    from singer_sdk.helpers.types import Context

    from tap_analytics.client import ResourceStream

PAGES_AHEAD = 2  # pages fetched ahead of the records being written (bounds memory)
FETCHER_GRACE = 2.0  # seconds a stopping stream waits for its request in flight, at most


@dataclass
class Page:
    """One page of records handed from the fetcher thread to the stream's record loop."""

    records: list[dict[str, t.Any]]
    extracted_at: datetime | None  # the encoder writes it as it writes the SDK path's
    failure: BaseException | None = None
    last: bool = False


def prefetched_pages(stream: ResourceStream, context: Context | None) -> Iterator[Page]:
    """Yield a stream's pages in order while a fetcher thread requests the next ones."""
    # The SDK fetches a page only after the previous one's records are consumed; here the
    # work on a page's records overlaps the wait for the next one.
    pages: queue.Queue[Page] = queue.Queue(maxsize=PAGES_AHEAD)
    stop = threading.Event()
    # A daemon: a stream that stops early (failure, signal) need not wait for a request
    # in flight or a backoff sleep; the fetcher sees `stop` and ends by itself.
    fetcher = threading.Thread(
        target=_fetch_pages,
        args=(stream, context, pages, stop),
        name=f"{stream.name}-fetch",
        daemon=True,
    )
    fetcher.start()
    try:
        while True:
            try:
                page = pages.get(timeout=0.25)
            except queue.Empty:  # a slow answer or a long backoff: stay interruptible
                if stream.run.stop.is_set():
                    raise SyncInterruptedError(0) from None
                continue
            yield page
            if page.failure is not None:
                raise page.failure
            if page.last:
                return
    finally:
        stop.set()
        fetcher.join(timeout=FETCHER_GRACE)


def _fetch_pages(
    stream: ResourceStream,
    context: Context | None,
    pages: queue.Queue[Page],
    stop: threading.Event,
) -> None:
    """Request every page in turn and hand each over; runs in the fetcher thread."""
    paginator = stream.get_new_paginator()
    fetch = stream.request_decorator(stream._request)  # noqa: SLF001 - the SDK's one request
    try:
        with stream.get_http_request_counter() as request_counter:
            request_counter.with_context(context)
            while not stop.is_set():
                request = stream._prepare_request(context=context, page=paginator)  # noqa: SLF001
                response = fetch(request, context)
                request_counter.increment()
                stream.update_sync_costs(request, response, context)  # logged at the end
                page = Page(list(stream.parse_response(response)), datetime.now(UTC))
                try:
                    paginator.advance(response)
                except Exception as failure:  # noqa: BLE001 - handed to the consumer
                    page.failure = failure
                page.last = paginator.finished
                _hand_over(page, pages, stop)
                if page.last or page.failure is not None:
                    return
    except BaseException as failure:  # noqa: BLE001 - handed to the consumer
        _hand_over(Page([], None, failure=failure, last=True), pages, stop)


def _hand_over(page: Page, pages: queue.Queue[Page], stop: threading.Event) -> None:
    """Queue a page for the record loop, unless the stream stopped reading."""
    while not stop.is_set():
        with contextlib.suppress(queue.Full):
            pages.put(page, timeout=0.1)
            return
