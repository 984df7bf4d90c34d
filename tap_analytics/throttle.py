"""A client-side throttle shared by every stream, so that parallel streams never hammer the API."""

from __future__ import annotations

import contextlib
import math
import threading
import time
import typing as t
from http import HTTPStatus

from tap_analytics.retry import MAX_RETRY_AFTER, retry_after_seconds

ALONE_POLL_SECONDS = 0.005  # between looks for a window's last requests answered

if t.TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    import requests


def _header_number(response: requests.Response, name: str) -> float | None:
    """A finite numeric response header, or None ("nan" parses, and would hold requests back)."""
    try:
        number = float(response.headers[name])
    except (KeyError, ValueError):
        return None
    return number if math.isfinite(number) else None


class Throttle:
    """Holds every request back while the rate-limit window has no room, or a Retry-After runs."""

    # The window's room is what the answers said was left, less the requests sent since and
    # not answered yet: every stream and slice shares it, so none draws a 429. Those in flight
    # may have been counted in that answer already: once the room is spent and every request
    # is answered, while the least any answer said was left is some, one request goes alone,
    # and its answer says exactly what is left (else a window ends that many requests short).
    # Answers overtake each other: the least, not the last, is the latest count. A new window
    # allows the API's X-RateLimit-Limit until its first answer: sending blind would draw a
    # 429 for every request past a limit below the streams and slices that wait for it.

    def __init__(
        self,
        now: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        """Share the window among every request of the run."""
        self._now, self._sleep = now, sleep  # tests pass a fake clock
        self._lock = threading.Lock()
        self._resume_at = 0.0  # a Retry-After's end
        self._room: float | None = None  # requests the window still allows; None: not known
        self._window_ends = 0.0
        self._window_over = False  # the window has ended, and no answer has told of the next
        self._limit: float | None = None  # what a window allows (X-RateLimit-Limit)
        self._in_flight = 0  # sent by wait, not yet done (answered or failed)
        self._said_left: float = 0  # the least the answers said the window had left
        self._alone = False  # the last request sent went out with none in flight
        self.met_limit = False  # the API's rate limit held a request back in this run

    @contextlib.contextmanager
    def turn(self) -> Iterator[None]:
        """Wait for a request's turn; it counts as in flight until the block ends."""
        self.wait()
        try:
            yield
        finally:
            self.done()

    def wait(self) -> None:
        """Sleep until a request may go out, and count it as sent."""
        while True:
            with self._lock:
                now = self._now()
                if now >= self._window_ends and not self._window_over:
                    self._window_over = True
                    self._room = None if self._limit is None else self._limit - self._in_flight
                    self._said_left = self._limit or 0
                delay = self._resume_at - now
                alone = self._in_flight == 0 and self._said_left >= 1
                if delay <= 0 and (self._room is None or self._room >= 1 or alone):
                    if self._room is not None:
                        self._room -= 1
                    self._alone = self._in_flight == 0
                    self._in_flight += 1
                    return
                if delay <= 0:
                    # Until the window resets or, once over, until an answer tells of the next;
                    # a request may go alone once none is in flight.
                    delay = ALONE_POLL_SECONDS if self._window_over else self._window_ends - now
                    if self._said_left >= 1:
                        delay = min(delay, ALONE_POLL_SECONDS)
                self.met_limit = True
            self._sleep(delay)

    def done(self) -> None:
        """Count a request sent by `wait` as no longer in flight, answered or not."""
        with self._lock:
            self._in_flight = max(self._in_flight - 1, 0)

    def observe(self, response: requests.Response) -> None:
        """Learn from a response's X-RateLimit-* headers and 429s, before its request is done."""
        pause = None
        if response.status_code == HTTPStatus.TOO_MANY_REQUESTS:
            pause = retry_after_seconds(response)
        remaining = _header_number(response, "X-RateLimit-Remaining")
        reset = _header_number(response, "X-RateLimit-Reset")
        limit = _header_number(response, "X-RateLimit-Limit")
        with self._lock:
            now = self._now()
            if limit is not None and limit >= 1:  # a window that allows none is no window
                self._limit = limit
            others = max(self._in_flight - 1, 0)  # sent beside this answer's request
            if remaining is not None and reset is not None:
                room, said_left = remaining - others, remaining  # those in flight take from it
                exact = self._alone and others == 0  # none sent beside it
                if self._room is None or now >= self._window_ends:
                    self._window_ends = now + min(max(reset, 0.0), MAX_RETRY_AFTER)
                    self._window_over = False
                elif not exact:  # answers come back out of order: the least is the latest
                    room, said_left = min(room, self._room), min(said_left, self._said_left)
                self._room, self._said_left = room, said_left
                # The requests in flight, at this answer's pace, would spend what the window
                # has left before it resets: the limit bounds the run (slices would cost it).
                took = response.elapsed.total_seconds()
                if took > 0 and (others + 1) / took * reset >= remaining:
                    self.met_limit = True
            if pause:
                self._resume_at = max(self._resume_at, now + pause)
                self.met_limit = True
