"""A client-side throttle shared by every stream, so that parallel streams never hammer the API."""

from __future__ import annotations

import threading
import time
import typing as t
from http import HTTPStatus

from tap_analytics.retry import MAX_RETRY_AFTER, retry_after_seconds

if t.TYPE_CHECKING:
    from collections.abc import Callable

    import requests


def _header_number(response: requests.Response, name: str) -> float | None:
    """A numeric response header, or None."""
    try:
        return float(response.headers[name])
    except (KeyError, ValueError):
        return None


class Throttle:
    """Holds every stream back until the rate-limit window resets or a Retry-After passes."""

    def __init__(
        self,
        concurrency: int,
        now: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        """Keep `concurrency` requests of headroom: that many may be in flight at once."""
        self._headroom = concurrency
        self._now, self._sleep = now, sleep  # tests pass a fake clock
        self._lock = threading.Lock()
        self._resume_at = 0.0

    def wait(self) -> None:
        """Sleep until requests may go out again."""
        delay = self._resume_at - self._now()
        if delay > 0:
            self._sleep(delay)

    def observe(self, response: requests.Response) -> None:
        """Learn from a response's X-RateLimit-* headers and 429s."""
        pause = None
        if response.status_code == HTTPStatus.TOO_MANY_REQUESTS:
            pause = retry_after_seconds(response)
        remaining = _header_number(response, "X-RateLimit-Remaining")
        reset = _header_number(response, "X-RateLimit-Reset")
        if remaining is not None and reset is not None and remaining < self._headroom:
            pause = max(pause or 0.0, min(reset, MAX_RETRY_AFTER))
        if pause:
            with self._lock:
                resume_at = self._now() + pause
                self._resume_at = max(self._resume_at, resume_at)
