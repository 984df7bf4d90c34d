"""What the streams of one run share: the token, the throttle, the writer and the stop flag."""

from __future__ import annotations

import threading
import time
import typing as t
from dataclasses import dataclass, field

if t.TYPE_CHECKING:
    from collections.abc import Callable

    from tap_analytics.auth import ClientCredentialsAuth
    from tap_analytics.output import LockedWriter
    from tap_analytics.throttle import Throttle


BUSY = 0.75  # of a core: past it, more requests in flight only wait for the GIL
BUSY_WINDOW = 0.2  # seconds over which the process's CPU is measured


class CpuMeter:
    """Whether this process keeps a core busy: its threads then wait for the GIL, not the API."""

    def __init__(
        self,
        now: Callable[[], float] = time.monotonic,
        cpu: Callable[[], float] = time.process_time,
    ) -> None:
        """Measure from the first question on (start-up is busy); tests pass fake clocks."""
        self._now, self._cpu = now, cpu
        self._lock = threading.Lock()
        self._at: float | None = None
        self._used = 0.0
        self._share = 0.0

    def busy(self) -> bool:
        """Tell whether the last whole window used BUSY of a core or more."""
        with self._lock:
            now, used = self._now(), self._cpu()
            if self._at is None:
                self._at, self._used = now, used
            elif now - self._at >= BUSY_WINDOW:
                self._share = (used - self._used) / (now - self._at)
                self._at, self._used = now, used
            return self._share >= BUSY


class RequestSlots:
    """The requests a run keeps in flight: one a stream always, more while under the cap."""

    def __init__(self, cap: int, busy: Callable[[], bool] = lambda: False) -> None:
        """Allow `cap` requests in flight across the run (a stream's first is never held).

        More than one a stream only while `busy()` is false: the process has CPU to spare.
        """
        self.cap = cap
        self.busy = busy
        # Pages that slices requested, queued or are writing, across the run's streams: a slot's
        # worth, so that memory stays flat however many streams are sliced.
        self.pages = threading.Semaphore(max(cap, 1))
        self._taken = 0
        self._unstarted = 0  # streams to come: a slot is kept for each
        self._lock = threading.Lock()

    def expect(self, streams: int) -> None:
        """Keep a slot for each of `streams` streams until it starts."""
        with self._lock:
            self._unstarted = streams

    def take(self, *, required: bool = False) -> bool:
        """Take a slot; a stream's first (required) even past the cap."""
        with self._lock:
            if required:
                self._unstarted = max(self._unstarted - 1, 0)
            elif self._taken + self._unstarted >= self.cap or self.busy():
                return False
            self._taken += 1
            return True

    def give_back(self) -> None:
        """Return a slot."""
        with self._lock:
            self._taken -= 1


@dataclass(frozen=True)
class RunContext:
    """Handed by the tap to each stream, so that a stream never reaches back into the tap."""

    auth: ClientCredentialsAuth
    throttle: Throttle
    writer: LockedWriter
    slots: RequestSlots = field(default_factory=lambda: RequestSlots(1))
    stop: threading.Event = field(default_factory=threading.Event)
