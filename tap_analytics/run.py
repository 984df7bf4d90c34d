"""What the streams of one run share: the token, the throttle, the writer and the stop flag."""

from __future__ import annotations

import threading
import typing as t
from dataclasses import dataclass, field

if t.TYPE_CHECKING:
    from tap_analytics.auth import ClientCredentialsAuth
    from tap_analytics.output import LockedWriter
    from tap_analytics.throttle import Throttle


class RequestSlots:
    """The requests a run keeps in flight: one a stream always, more while under the cap."""

    def __init__(self, cap: int) -> None:
        """Allow `cap` requests in flight across the run (a stream's first is never held)."""
        self.cap = cap
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
            elif self._taken + self._unstarted >= self.cap:
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
