"""The HTTP side of every resource: requests, auth, retries, pages and error messages."""

from __future__ import annotations

import logging
import typing as t
import weakref
from decimal import Decimal
from http import HTTPStatus
from urllib.parse import urlparse

import msgspec
import requests
from singer_sdk import RESTStream
from singer_sdk.exceptions import RetriableAPIError
from singer_sdk.pagination import SinglePagePaginator
from singer_sdk.singerlib.catalog import REPLICATION_FULL_TABLE
from typing_extensions import override

from tap_analytics.errors import (
    AnalyticsAPIError,
    InvalidTokenError,
    SyncInterruptedError,
    TokenRevokedError,
)
from tap_analytics.paging import CursorPaginator, dig
from tap_analytics.redact import quoted
from tap_analytics.retry import RetryPolicy
from tap_analytics.transport import NO_ANSWER, AnswerTooLargeError, bounded, no_answer

if t.TYPE_CHECKING:
    from collections.abc import Generator, Iterable

    from backoff.types import Details
    from singer_sdk import Tap
    from singer_sdk.helpers.types import Context, RequestFunc
    from singer_sdk.pagination import BaseAPIPaginator

    from tap_analytics.resources import Resource
    from tap_analytics.run import RunContext

ADVICE = {
    HTTPStatus.BAD_REQUEST: "check page_size, start_date and the state's bookmark",
    HTTPStatus.UNAUTHORIZED: (
        "the API refused the access token without an invalid_token challenge: check token_url "
        "and scope"
    ),
    HTTPStatus.FORBIDDEN: "grant the client the scope for this resource, or deselect the stream",
    HTTPStatus.NOT_FOUND: "check base_url and the resource's path, or deselect the stream",
    HTTPStatus.REQUEST_URI_TOO_LONG: (
        "the URL, with the cursor the API sent, is too long for the API: report it to the API "
        "provider"
    ),
    0: "the API is failing: rerun later, or raise max_retries and backoff_factor",
}

# A revocation rejects a request once (its next token is issued after the revocation), so a
# request rejected more often saw as many revocations while it waited, or a server rejecting
# this resource's requests whatever the token.
MAX_REJECTIONS = 10
# Requests that end without a usable answer: explained in words, not urllib3's.
UNANSWERED: tuple[type[Exception], ...] = (AnswerTooLargeError, *NO_ANSWER)
# Numbers with a fraction or an exponent as Decimals: written with the digits the API sent.
_decode = msgspec.json.Decoder(float_hook=Decimal).decode


def path_of(request: requests.PreparedRequest) -> str:
    """The path a request went to, for messages (the query may hold a cursor)."""
    return urlparse(request.url or "").path


def bearer_token(request: requests.PreparedRequest) -> str | None:
    """The access token a request carried."""
    return request.headers.get("Authorization", "").removeprefix("Bearer ") or None


class ResourceStream(RESTStream[str | None]):
    """The HTTP side of a resource: its requests, retries, pages and errors."""

    def __init__(
        self, tap: Tap, resource: Resource, schema: dict[str, t.Any], run: RunContext
    ) -> None:
        """Serve one declared resource with what the run shares."""
        self.resource = resource
        self.run = run
        super().__init__(tap, name=resource.name, schema=schema, path=resource.path)
        self.primary_keys = list(resource.key_properties)
        self.replication_key = resource.incremental.cursor_path if resource.incremental else None
        # Bodies decoded while validating, reused by the paginator and the parser.
        self._bodies: weakref.WeakKeyDictionary[requests.Response, object] = (
            weakref.WeakKeyDictionary()
        )
        bounded(self.requests_session, run.slots.cap)

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
        return self.run.auth

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
        # A replace resource, or a full read the catalog chose: the target keeps only this
        # version's rows (the tap advertises ACTIVATE_VERSION).
        forced = self.forced_replication_method == REPLICATION_FULL_TABLE
        return self.resource.write_disposition == "replace" or forced

    @override
    def get_new_paginator(self) -> BaseAPIPaginator[str | None]:
        if self.resource.page_size is None:
            return SinglePagePaginator()  # type: ignore[return-value]
        # A page's identity: its records' keys and replication values (none without a key).
        key_fields = (
            (*self.primary_keys, *([self.replication_key] if self.replication_key else []))
            if self.primary_keys
            else ()
        )
        return CursorPaginator(
            self._decoded, self.resource.cursor_path, self._page_records, key_fields
        )

    @override
    def get_url_params(
        self, context: Context | None, next_page_token: str | None
    ) -> dict[str, t.Any]:
        params = dict(self.resource.params)
        if self.resource.page_size is not None:
            params["limit"] = self.resource.page_size
        if next_page_token is not None:
            params[self.resource.cursor_param] = next_page_token
        return params

    @property
    def start_param(self) -> str | None:
        """The query parameter that starts a list at an instant of the replication key."""
        return self.resource.incremental.start_param if self.resource.incremental else None

    # Responses

    @override
    def validate_response(self, response: requests.Response) -> None:
        self.run.throttle.observe(response)
        status = response.status_code
        if status == HTTPStatus.UNAUTHORIZED and "invalid_token" in response.headers.get(
            "WWW-Authenticate", response.text[:200]
        ):
            message = self.response_error_message(response)
            raise InvalidTokenError(message, bearer_token(response.request))
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
        except (msgspec.DecodeError, RecursionError, AttributeError):
            error = None
        if isinstance(error, dict):
            code, message = str(error.get("code", "")), str(error.get("message", ""))
        elif isinstance(error, str):  # RFC 6749 shape
            code = error
        detail = f" {code}" if code else ""
        detail += f": {message}" if message else ""
        detail = quoted(detail)  # a careless server may quote the request's Authorization
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
        except (msgspec.DecodeError, RecursionError) as error:
            raise RetriableAPIError(self._not_json_message(response, error), response) from None
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

    def _not_json_message(self, response: requests.Response, error: Exception) -> str:
        """Explain a body that does not decode: the decoder's reason, the server's type."""
        # Both are quoted: a careless server may fill its Content-Type with what it was sent.
        kind = quoted(response.headers.get("Content-Type", "no Content-Type"))
        advice = (
            "the API sent malformed JSON: report it to the API provider, else rerun later"
            if "json" in kind.lower()
            else "check base_url (a proxy or a login page answers?), else rerun later"
        )
        return (
            f"stream '{self.name}': HTTP {response.status_code} with a body that is not JSON "
            f"({quoted(str(error))}; {kind}) (GET {urlparse(response.url).path}); {advice}"
        )

    @override
    def parse_response(self, response: requests.Response) -> Iterable[dict[str, t.Any]]:
        return self._page_records(response)

    def _page_records(self, response: requests.Response) -> list[t.Any]:
        """The records of a page, as the API sent them."""
        records = dig(self._decoded(response), self.resource.data_selector)
        return records if isinstance(records, list) else []

    # Retries

    @override
    def request_decorator(self, func: RequestFunc) -> RequestFunc:
        def with_fresh_token(
            prepared: requests.PreparedRequest, context: Context | None
        ) -> requests.Response:
            waits = self.retry.wait_generator()
            next(waits)
            rejections = 0
            while True:
                try:
                    with self.run.throttle.turn():
                        response = func(prepared, context)
                except InvalidTokenError as rejected:
                    # Tokens can be revoked before expiry: a new one (the first stream to see
                    # the rejection fetches it for all), and the request repeated at once,
                    # then after each backoff wait.
                    rejections += 1
                    unused = self.run.auth.discard(rejected.token)
                    if unused > max(self.retry.max_retries, 1) or rejections > MAX_REJECTIONS:
                        message = self._rejected_message(prepared, unused, rejections)
                        raise TokenRevokedError(message) from None
                    wait = 0.0 if rejections == 1 else RetryPolicy.jitter(waits.send(rejected))
                    self.log(
                        "Access token rejected (%d time(s) in a row for this request); a new "
                        "one in %.1f s",
                        rejections,
                        wait,
                        level=logging.WARNING,
                    )
                    if self.run.stop.wait(wait):
                        raise SyncInterruptedError(0) from None
                else:
                    self.run.auth.served(bearer_token(prepared))
                    return response

        retried = super().request_decorator(with_fresh_token)

        def explained(
            prepared: requests.PreparedRequest, context: Context | None
        ) -> requests.Response:
            try:
                return retried(prepared, context)
            except UNANSWERED as error:
                raise AnalyticsAPIError(self._given_up_message(prepared, error)) from None

        return explained

    def _given_up_message(self, prepared: requests.PreparedRequest, error: Exception) -> str:
        """Explain a request that got no usable answer: its cause and the fix, never urllib3's."""
        where = f"GET {path_of(prepared)}"
        if isinstance(error, AnswerTooLargeError):
            return (
                f"stream '{self.name}': {error} ({where}), more than a page can hold: report it "
                "to the API provider"
            )
        if isinstance(error, requests.exceptions.Timeout):
            return (
                f"stream '{self.name}': no answer within request_timeout ({self.timeout:g} s) in "
                f"{self.retry.max_tries} attempt(s) ({where}); the API is not answering, or too "
                "slowly (request_timeout bounds a request from its sending to the last byte of "
                "its answer): rerun later, or raise request_timeout"
            )
        return (
            f"stream '{self.name}': {no_answer(error)}, in {self.retry.max_tries} attempt(s) "
            f"({where}); the API or a proxy before it is dropping connections: rerun later, or "
            "raise max_retries and backoff_factor"
        )

    def _rejected_message(
        self, prepared: requests.PreparedRequest, unused: int, rejections: int
    ) -> str:
        """Explain why repeating with new tokens was given up: not the credentials."""
        where = f"GET {path_of(prepared)}"
        if rejections > MAX_REJECTIONS:
            return (
                f"stream '{self.name}': the API rejected the access token {rejections} times in "
                f"a row for this request ({where}) while accepting it for others; check that "
                "the client may read this resource, or deselect the stream"
            )
        return (
            f"stream '{self.name}': the access token was revoked {unused} times in a row "
            f"before the API accepted a single request with it ({where}); likely another job "
            "uses the same client credentials (a provider that keeps one live token per client "
            "revokes ours each time it issues one), or the provider is revoking tokens: give "
            "this tap a client of its own, or rerun later"
        )

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
        cause: object = failure
        if failure is not None and not isinstance(failure, RetriableAPIError):
            cause = no_answer(failure) or repr(failure)  # words, not urllib3's
        self.log(
            "Retry %d of %d in %.1f s after: %s",
            details.get("tries", 0),
            self.retry.max_retries,
            details.get("wait", 0.0),
            cause,
            level=logging.WARNING,
        )
