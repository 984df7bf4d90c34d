"""The one stream class: requests, retries, page parsing and the record path of every resource."""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import typing as t
import weakref
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from http import HTTPStatus
from urllib.parse import urlparse

import msgspec
import requests
from singer_sdk import RESTStream
from singer_sdk.exceptions import RetriableAPIError
from singer_sdk.mapper import SameRecordTransform
from singer_sdk.pagination import SinglePagePaginator
from typing_extensions import override

from tap_analytics.errors import (
    AnalyticsAPIError,
    BadPageError,
    InvalidStateError,
    InvalidTokenError,
    SyncInterruptedError,
)
from tap_analytics.output import encode_line
from tap_analytics.paging import CursorPaginator, dig
from tap_analytics.retry import RetryPolicy
from tap_analytics.state import BadBookmarkError, Bookmark, starting_value

if t.TYPE_CHECKING:
    from collections.abc import Generator, Iterable

    from backoff.types import Details
    from singer_sdk.helpers.types import Context, RequestFunc
    from singer_sdk.pagination import BaseAPIPaginator

    from tap_analytics.resources import Resource
    from tap_analytics.tap import TapAnalytics

ADVICE = {
    HTTPStatus.BAD_REQUEST: "check page_size, start_date and the state's bookmark",
    HTTPStatus.UNAUTHORIZED: "a fresh token was refused too: check client_id and client_secret",
    HTTPStatus.FORBIDDEN: "grant the client the scope for this resource, or deselect the stream",
    HTTPStatus.NOT_FOUND: "check base_url and the resource's path, or deselect the stream",
    0: "the API is failing: rerun later, or raise max_retries and backoff_factor",
}
PAGES_AHEAD = 2  # pages fetched ahead of the records being written (bounds memory)
FETCHER_GRACE = 2.0  # seconds a stopping stream waits for its request in flight, at most
STATE_EVERY = 1000  # records between STATE messages: the most a killed run re-reads
_decode = msgspec.json.Decoder().decode


@dataclass
class Page:
    """One page of records handed from the fetcher thread to the stream's record loop."""

    records: list[dict[str, t.Any]]
    extracted_at: str
    failure: BaseException | None = None
    last: bool = False


class AnalyticsStream(RESTStream[str | None]):
    """A resource of the Analytics API, described by a Resource declaration."""

    def __init__(self, tap: TapAnalytics, resource: Resource, schema: dict[str, t.Any]) -> None:
        """Serve one declared resource."""
        self.resource = resource
        self._analytics_tap = tap
        super().__init__(tap, name=resource.name, schema=schema, path=resource.path)
        self.primary_keys = list(resource.key_properties)
        self.replication_key = resource.incremental.cursor_path if resource.incremental else None
        # Bodies decoded while validating, reused by the paginator and the parser.
        self._bodies: weakref.WeakKeyDictionary[requests.Response, object] = (
            weakref.WeakKeyDictionary()
        )
        self._start_value: str | None = None
        self._extracted_at = ""

    @property
    @override
    def url_base(self) -> str:
        return str(self.config["base_url"]).rstrip("/")

    @property
    @override
    def timeout(self) -> float:  # type: ignore[override]
        return float(self.config["request_timeout"])

    @property
    @override
    def authenticator(self) -> requests.auth.AuthBase:
        return self._analytics_tap.auth

    @property
    @override
    def http_headers(self) -> dict[str, str]:
        return {"Accept": "application/json", "User-Agent": self.user_agent}

    @property
    def retry(self) -> RetryPolicy:
        """This resource's retry policy."""
        return self.resource.retry

    @property
    @override
    def emit_activate_version_messages(self) -> bool:
        return self.resource.write_disposition == "replace"

    @override
    def get_new_paginator(self) -> BaseAPIPaginator[str | None]:
        if self.resource.page_size is None:
            return SinglePagePaginator()  # type: ignore[return-value]
        return CursorPaginator(self._decoded, self.resource.cursor_path)

    @override
    def get_url_params(
        self, context: Context | None, next_page_token: str | None
    ) -> dict[str, t.Any]:
        params = dict(self.resource.params)
        if self.resource.page_size is not None:
            params["limit"] = self.resource.page_size
        if next_page_token is not None:
            params[self.resource.cursor_param] = next_page_token
        incremental = self.resource.incremental
        if incremental and incremental.start_param and self._start_value is not None:
            params[incremental.start_param] = self._start_value
        return params

    # Responses

    @override
    def validate_response(self, response: requests.Response) -> None:
        self._analytics_tap.throttle.observe(response)
        status = response.status_code
        if status == HTTPStatus.UNAUTHORIZED and "invalid_token" in response.headers.get(
            "WWW-Authenticate", response.text[:200]
        ):
            token = response.request.headers.get("Authorization", "").removeprefix("Bearer ")
            raise InvalidTokenError(self.response_error_message(response), token or None)
        if self.retry.is_retryable(status):
            raise RetriableAPIError(self.response_error_message(response), response)
        if status >= HTTPStatus.BAD_REQUEST:
            raise AnalyticsAPIError(self.response_error_message(response))
        self._decoded(response)

    @override
    def response_error_message(self, response: requests.Response) -> str:
        code, message = "", ""
        try:
            error = _decode(response.content).get("error")
        except (msgspec.DecodeError, AttributeError):
            error = None
        if isinstance(error, dict):
            code, message = str(error.get("code", "")), str(error.get("message", ""))
        elif isinstance(error, str):  # RFC 6749 shape
            code = error
        detail = f" {code}" if code else ""
        detail += f": {message}" if message else ""
        advice = ADVICE.get(response.status_code, ADVICE[0])
        return (
            f"stream '{self.name}': HTTP {response.status_code}{detail} "
            f"(GET {urlparse(response.url).path}); {advice}"
        )

    def _decoded(self, response: requests.Response) -> object:
        """Decode a page body once; the paginator and the record parser share it."""
        if (body := self._bodies.get(response)) is not None:
            return body
        try:
            body = _decode(response.content)
        except msgspec.DecodeError:
            kind = response.headers.get("Content-Type", "unknown content type")
            msg = (
                f"stream '{self.name}': HTTP {response.status_code} with a body that is not "
                f"JSON ({kind}) (GET {urlparse(response.url).path}); check base_url (a proxy "
                "or login page answers?), else rerun later"
            )
            raise RetriableAPIError(msg, response) from None
        records = dig(body, self.resource.data_selector)
        if not isinstance(records, list):
            found = "no" if records is None else f"a {type(records).__name__} at"
            msg = (
                f"stream '{self.name}': HTTP {response.status_code} with {found} "
                f"'{self.resource.data_selector}' list (GET {urlparse(response.url).path}); "
                "if the API puts records elsewhere, set the resource's data_selector, else "
                "rerun later"
            )
            raise RetriableAPIError(msg, response)
        self._bodies[response] = body
        return body

    @override
    def request_records(self, context: Context | None) -> Iterable[dict[str, t.Any]]:
        # The SDK fetches a page only after the previous one's records are consumed; here a
        # fetcher thread requests each next page as soon as its cursor is known, so that the
        # work on a page's records overlaps the wait for the next one.
        pages: queue.Queue[Page] = queue.Queue(maxsize=PAGES_AHEAD)
        stop = threading.Event()
        # A daemon: a stream that stops early (failure, signal) need not wait for a request
        # in flight or a backoff sleep; the fetcher sees `stop` and ends by itself.
        fetcher = threading.Thread(
            target=self._fetch_pages,
            args=(context, pages, stop),
            name=f"{self.name}-fetch",
            daemon=True,
        )
        fetcher.start()
        try:
            while True:
                try:
                    page = pages.get(timeout=0.25)
                except queue.Empty:  # a slow answer or a long backoff: stay interruptible
                    if self._analytics_tap.stop_requested.is_set():
                        raise SyncInterruptedError(0) from None
                    continue
                self._extracted_at = page.extracted_at
                yield from page.records  # a page is good even when its cursor is not
                if page.failure is not None:
                    raise page.failure
                if page.last:
                    return
        finally:
            stop.set()
            fetcher.join(timeout=FETCHER_GRACE)

    def _fetch_pages(
        self, context: Context | None, pages: queue.Queue[Page], stop: threading.Event
    ) -> None:
        """Request every page in turn and hand each over; runs in the fetcher thread."""
        paginator = self.get_new_paginator()
        fetch = self.request_decorator(self._request)
        try:
            with self.get_http_request_counter() as request_counter:
                request_counter.with_context(context)
                while not stop.is_set():
                    request = self._prepare_request(context=context, page=paginator)
                    response = fetch(request, context)
                    request_counter.increment()
                    page = Page(list(self.parse_response(response)), datetime.now(UTC).isoformat())
                    try:
                        paginator.advance(response)
                    except Exception as failure:  # noqa: BLE001 - handed to the consumer
                        page.failure = failure
                    page.last = paginator.finished
                    self._hand_over(page, pages, stop)
                    if page.last or page.failure is not None:
                        return
        except BaseException as failure:  # noqa: BLE001 - handed to the consumer
            self._hand_over(Page([], "", failure=failure, last=True), pages, stop)

    @staticmethod
    def _hand_over(page: Page, pages: queue.Queue[Page], stop: threading.Event) -> None:
        """Queue a page for the record loop, unless the stream stopped reading."""
        while not stop.is_set():
            with contextlib.suppress(queue.Full):
                pages.put(page, timeout=0.1)
                return

    @override
    def parse_response(self, response: requests.Response) -> Iterable[dict[str, t.Any]]:
        records = dig(self._decoded(response), self.resource.data_selector)
        return records if isinstance(records, list) else []

    # Retries

    @override
    def request_decorator(self, func: RequestFunc) -> RequestFunc:
        def with_fresh_token(
            prepared: requests.PreparedRequest, context: Context | None
        ) -> requests.Response:
            self._analytics_tap.throttle.wait()
            try:
                return func(prepared, context)
            except InvalidTokenError as rejected:
                # Tokens can be revoked before expiry: get a new one and repeat once.
                self._analytics_tap.auth.discard(rejected.token)
                self.log("Access token rejected; fetching a new one", level=logging.WARNING)
                return func(prepared, context)

        return super().request_decorator(with_fresh_token)

    @override
    def backoff_wait_generator(self) -> Generator[float, t.Any, None]:
        return self.retry.wait_generator()

    @override
    def backoff_max_tries(self) -> int:
        return self.retry.max_tries

    @override
    def backoff_jitter(self, value: float) -> float:
        return RetryPolicy.jitter(value)

    @override
    def backoff_handler(self, details: Details) -> None:
        failure = details.get("exception")
        self.log(
            "Retry %d of %d in %.1f s after: %s",
            details.get("tries", 0),
            self.retry.max_retries,
            details.get("wait", 0.0),
            failure if isinstance(failure, RetriableAPIError) else repr(failure),
            level=logging.WARNING,
        )

    # Records and state

    @override
    def get_replication_key_signpost(self, context: Context | None = None) -> None:
        return None  # records are sorted: the last one written is the bookmark

    @cached_property
    def _property_names(self) -> frozenset[str]:
        """Top-level properties of the schema."""
        return frozenset(self.schema.get("properties", {}))

    def _writes_records_verbatim(self) -> bool:
        """Tell whether records can skip selection, conformance and mapping."""
        maps = self.stream_maps
        return (
            all(self.mask.values())
            and len(maps) == 1
            and type(maps[0]) is SameRecordTransform
            and maps[0].stream_alias == self.name
            and not maps[0].flattening_enabled
        )

    def _check_record(self, record: object, required: tuple[str, ...]) -> dict[str, t.Any]:
        """Refuse a record without its key or replication value, naming what is missing."""
        if not isinstance(record, dict):
            msg = f"stream '{self.name}': a record is not an object: {record!r:.80}"
            raise BadPageError(msg)
        for field in required:
            if record.get(field) is None:
                msg = (
                    f"stream '{self.name}': a record has no '{field}' "
                    f"(id {record.get('id')!r}), so the tap cannot key or bookmark it; report it "
                    "to the API provider"
                )
                raise BadPageError(msg)
        return record

    def _encode(self, record: dict[str, t.Any], *, verbatim: bool) -> Iterable[bytes]:
        """Encode a record's RECORD message line(s)."""
        if verbatim and record.keys() <= self._property_names:
            message: dict[str, t.Any] = {
                "type": "RECORD",
                "stream": self.name,
                "record": record,
                "time_extracted": self._extracted_at,
            }
            if self._stream_version is not None:
                message["version"] = self._stream_version
            return (encode_line(message),)
        writer = self._analytics_tap.writer
        return [writer.format_message(m) for m in self._generate_record_messages(record)]

    def check_state(self) -> str | None:
        """Pick where this run starts; say what is wrong with the stored bookmark, if anything."""
        self._bookmark = Bookmark()
        if self.resource.incremental is None:
            return None
        bookmark = self.stream_state.get("replication_key_value")
        try:
            self._start_value = starting_value(
                (f"the bookmark of stream '{self.name}'", bookmark),
                ("start_date", self.config.get("start_date")),
                (
                    f"the initial_value of stream '{self.name}'",
                    self.resource.incremental.initial_value,
                ),
            )
        except BadBookmarkError as exc:
            return f"{exc}; fix or remove it in the state to resume"
        self._bookmark = Bookmark(bookmark if isinstance(bookmark, str) else None)
        return None

    def _checkpoint(self, lines: list[bytes], written: Bookmark) -> None:
        """Write lines, then move the bookmark past them and write STATE."""

        def advance() -> dict[str, t.Any]:
            if self.replication_key and written.value is not None:
                self._bookmark.advance(written.value)
                state = self.stream_state
                state["replication_key"] = self.replication_key
                state["replication_key_value"] = self._bookmark.value
            return dict(self._analytics_tap.state)

        self._analytics_tap.writer.checkpoint(lines, advance)
        lines.clear()

    @override
    def _sync_records(
        self,
        context: Context | None = None,
        *,
        write_messages: bool = True,
    ) -> Generator[dict[str, t.Any], None, None]:
        # Replaces the SDK's per-record loop (pinned to singer-sdk 0.54): bookmarks by
        # instant, STATE every STATE_EVERY records, one locked writer, a verbatim fast path.
        session = self.requests_session
        # Resolve proxies once: requests would otherwise look them up on every request.
        session.proxies = requests.utils.get_environ_proxies(self.url_base)
        session.trust_env = False
        if problem := self.check_state():
            raise InvalidStateError(problem)
        verbatim = self._writes_records_verbatim()
        stop = self._analytics_tap.stop_requested
        writes = write_messages and self.selected
        key = self.replication_key
        required = (*self.resource.primary_key, *((key,) if key else ()))
        lines: list[bytes] = []
        chunk, last_value = Bookmark(), None
        with self.get_record_counter() as counter, self.get_sync_timer():
            try:
                for count, raw in enumerate(self.get_records(context), start=1):
                    if stop.is_set():
                        raise SyncInterruptedError(0)
                    self._check_max_record_limit(count - 1)  # the SDK's dry-run limit
                    record = self._check_record(raw, required)
                    if key and record[key] != last_value:  # ties need no second parse
                        last_value = record[key]
                        chunk.advance(last_value, what=key)
                    if writes:
                        lines.extend(self._encode(record, verbatim=verbatim))
                    counter.increment()
                    if count % STATE_EVERY == 0:
                        self._checkpoint(lines, chunk)
                    yield record
            finally:
                self._checkpoint(lines, chunk)
        if self.emit_activate_version_messages and self._stream_version is not None:
            self._write_activate_version_message(self._stream_version)
