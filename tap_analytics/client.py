"""The HTTP side of every resource: requests, auth, retries, pages and error messages."""

from __future__ import annotations

import logging
import typing as t
import weakref
from http import HTTPStatus
from urllib.parse import urlparse

import msgspec
from singer_sdk import RESTStream
from singer_sdk.exceptions import RetriableAPIError
from singer_sdk.pagination import SinglePagePaginator
from typing_extensions import override

from tap_analytics.errors import AnalyticsAPIError, InvalidTokenError
from tap_analytics.paging import CursorPaginator, dig
from tap_analytics.retry import RetryPolicy

if t.TYPE_CHECKING:
    from collections.abc import Generator, Iterable

    import requests
    from backoff.types import Details
    from singer_sdk import Tap
    from singer_sdk.helpers.types import Context, RequestFunc
    from singer_sdk.pagination import BaseAPIPaginator

    from tap_analytics.resources import Resource
    from tap_analytics.run import RunContext

ADVICE = {
    HTTPStatus.BAD_REQUEST: "check page_size, start_date and the state's bookmark",
    HTTPStatus.UNAUTHORIZED: "a fresh token was refused too: check client_id and client_secret",
    HTTPStatus.FORBIDDEN: "grant the client the scope for this resource, or deselect the stream",
    HTTPStatus.NOT_FOUND: "check base_url and the resource's path, or deselect the stream",
    0: "the API is failing: rerun later, or raise max_retries and backoff_factor",
}
_decode = msgspec.json.Decoder().decode


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
        self._start_value: str | None = None

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
        self.run.throttle.observe(response)
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
    def parse_response(self, response: requests.Response) -> Iterable[dict[str, t.Any]]:
        records = dig(self._decoded(response), self.resource.data_selector)
        return records if isinstance(records, list) else []

    # Retries

    @override
    def request_decorator(self, func: RequestFunc) -> RequestFunc:
        def with_fresh_token(
            prepared: requests.PreparedRequest, context: Context | None
        ) -> requests.Response:
            self.run.throttle.wait()
            try:
                return func(prepared, context)
            except InvalidTokenError as rejected:
                # Tokens can be revoked before expiry: get a new one and repeat once.
                self.run.auth.discard(rejected.token)
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
