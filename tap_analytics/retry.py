"""When to retry a request and how long to wait: shared by data and token requests."""

from __future__ import annotations

import math
import random
import typing as t
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from http import HTTPStatus

import requests
from singer_sdk.exceptions import RetriableAPIError

if t.TYPE_CHECKING:
    from collections.abc import Generator

MAX_RETRY_AFTER = 120.0  # a server asking for more gets this, so one answer cannot stall a run
DEFAULT_RETRY_STATUSES = frozenset(
    {
        HTTPStatus.TOO_MANY_REQUESTS,
        HTTPStatus.INTERNAL_SERVER_ERROR,
        HTTPStatus.BAD_GATEWAY,
        HTTPStatus.SERVICE_UNAVAILABLE,
    }
)
TRANSIENT_ERRORS: tuple[type[Exception], ...] = (
    RetriableAPIError,
    ConnectionError,
    requests.exceptions.Timeout,
    requests.exceptions.ConnectionError,
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ContentDecodingError,
)


def retry_after_seconds(response: requests.Response | None) -> float | None:
    """Read a Retry-After header (seconds or an HTTP date), capped; None if unusable."""
    if response is None:
        return None
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, OverflowError):
            return None
        if when.tzinfo is None:  # `-0000` or no zone: HTTP dates are in GMT (RFC 9110)
            when = when.replace(tzinfo=UTC)
        seconds = (when - datetime.now(UTC)).total_seconds()
    if math.isnan(seconds):  # "nan" parses as a float, and would fail the wait itself
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with Retry-After taking precedence."""

    max_retries: int = 3
    backoff_factor: float = 2.0
    retry_statuses: frozenset[int] = DEFAULT_RETRY_STATUSES

    @property
    def max_tries(self) -> int:
        """Attempts in all: the first one and the retries."""
        return self.max_retries + 1

    def is_retryable(self, status: int) -> bool:
        """Tell whether a status is worth another try."""
        return status in self.retry_statuses

    def wait_generator(self) -> Generator[float, BaseException | None, None]:
        """Yield waits; the backoff library sends each failure in to read Retry-After."""
        retry = 0
        failure = yield 0.0  # primes the generator
        while True:
            response = getattr(failure, "response", None)
            after = retry_after_seconds(response)
            wait = after if after is not None else self.backoff_factor * 2**retry
            retry += 1
            failure = yield min(wait, MAX_RETRY_AFTER)

    @staticmethod
    def jitter(wait: float) -> float:
        """Add up to 10 % so parallel clients spread out, within the cap (waits never exceed it)."""
        spread = random.uniform(0, wait * 0.1)  # noqa: S311 - not cryptographic
        return min(wait + spread, MAX_RETRY_AFTER)
