"""A stream's pages, requested in turn by the thread that writes them, with its wait clock."""

from __future__ import annotations

import threading
import time
import typing as t
from dataclasses import dataclass, field
from datetime import UTC, datetime

from tap_analytics.paging import CursorPaginator

if t.TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from singer_sdk.helpers.types import Context

    from tap_analytics.client import ResourceStream


@dataclass
class Page:
    """One page of records, and when it was extracted."""

    records: list[dict[str, t.Any]]
    extracted_at: datetime  # the encoder writes it as it writes the SDK path's


@dataclass
class WaitClock:
    """How long a stream has spent waiting on the API (answers, retries), not computing."""

    now: Callable[[], float] = time.monotonic  # tests pass fakes of both clocks (and `started`)
    cpu: Callable[[], float] = time.thread_time  # this thread's CPU time
    started: float = field(default_factory=time.monotonic)
    waited: float = 0.0  # seconds of finished requests not spent on this thread's CPU
    requests: int = 0
    in_flight_since: float | None = None  # a request not answered yet counts as waiting
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def share_waiting(self, now: float) -> float | None:
        """The share of its time the stream has waited so far; None before its first request."""
        with self.lock:
            if not self.requests and self.in_flight_since is None:
                return None
            waited = self.waited
            if self.in_flight_since is not None:
                waited += now - self.in_flight_since
        return waited / max(now - self.started, 1e-9)


def fetched_pages(
    stream: ResourceStream, context: Context | None, clock: WaitClock, since: str | None = None
) -> Iterator[Page]:
    """Yield a stream's pages from `since` in order, each requested once the last is handled."""
    # No fetcher thread: its hand-offs cost more CPU a record than the overlap saved here;
    # latency is hidden by syncing streams side by side instead (see sync_all.py).
    paginator = stream.get_new_paginator()
    fetch = stream.request_decorator(stream._request)  # noqa: SLF001 - the SDK's one request
    with stream.get_http_request_counter() as request_counter:
        request_counter.with_context(context)
        while True:
            request = stream._prepare_request(context=context, page=paginator)  # noqa: SLF001
            if since is not None and (start_param := stream.start_param) is not None:
                request.prepare_url(request.url, {start_param: since})
            cpu, sent = clock.cpu(), clock.now()
            clock.in_flight_since = sent
            try:
                response = fetch(request, context)
            finally:
                waited = clock.now() - sent - (clock.cpu() - cpu)
                with clock.lock:
                    clock.waited += waited
                    clock.requests += 1
                    clock.in_flight_since = None
            request_counter.increment()
            stream.update_sync_costs(request, response, context)  # logged at the end
            page = Page(list(stream.parse_response(response)), datetime.now(UTC))
            if isinstance(paginator, CursorPaginator):
                paginator.check_progress(response)  # a page of records read before is not good
            yield page  # a page is good even when its cursor is not
            # Not held through the next request: a slice's pages wait in a queue meanwhile.
            del page
            paginator.advance(response)
            del response
            if paginator.finished:
                return


def first_record(stream: ResourceStream, since: str | None) -> dict[str, t.Any] | None:
    """The first record at or after `since` (the list's first without it): a page of one."""
    params = {**stream.get_url_params(None, None), "limit": 1}
    if since is not None and stream.start_param is not None:
        params[stream.start_param] = since
    request = stream.build_prepared_request(
        method="GET", url=stream.get_url(None), params=params, headers=stream.http_headers
    )
    fetch = stream.request_decorator(stream._request)  # noqa: SLF001 - the SDK's one request
    records = list(stream.parse_response(fetch(request, None)))
    first = records[0] if records else None
    return first if isinstance(first, dict) else None
