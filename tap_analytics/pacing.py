"""Streams side by side only while they wait on the API: threads cost CPU when none waits."""

from __future__ import annotations

import queue
import threading
import time
import typing as t

from tap_analytics.pages import WaitClock

if t.TYPE_CHECKING:
    from collections.abc import Callable

MOSTLY_WAITING = 0.5  # share of its time a stream waits on the API before another starts
JUDGED_AFTER = 0.02  # seconds a stream runs before its share is judged, answered or not
POLL_SECONDS = 0.01  # between looks at the running streams' shares while others queue
TICK_SECONDS = 0.5  # between progress ticks otherwise


class Paced(t.Protocol):
    """What pacing needs of a stream."""

    @property
    def name(self) -> str:
        """The stream's name."""

    def begin_sync(self, clock: WaitClock) -> object:
        """Begin a new sync of the stream, its waits counted by `clock`."""


def may_start(clocks: t.Collection[WaitClock], cap: int, now: float) -> bool:
    """Tell whether another stream may start: none runs, or all mostly wait on the API."""
    if len(clocks) >= cap:
        return False
    for clock in clocks:
        if now - clock.started < JUDGED_AFTER:
            return False  # too early to tell: a first request may be quick or slow
        share = clock.share_waiting(now)
        if share is None or share <= MOSTLY_WAITING:
            return False
    return True


S = t.TypeVar("S", bound=Paced)


class PacedThreads(t.Generic[S]):
    """Syncs streams in daemon threads, at most `cap` at once, paced by what they wait on."""

    def __init__(
        self,
        cap: int,
        sync: Callable[[S], None],
        tick: Callable[[], None],
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        """Sync each stream with `sync`; call `tick` often from the waiting thread."""
        self.cap = max(cap, 1)
        self.sync = sync
        self.tick = tick
        self.now = now  # the wall clock the streams' shares are judged by
        self.running: dict[str, tuple[threading.Thread, WaitClock]] = {}
        self._finished: queue.Queue[tuple[str, BaseException | None]] = queue.Queue()

    def run(self, streams: list[S]) -> dict[str, BaseException]:
        """Sync every stream; return the failures by stream name."""
        queued, failures = list(streams), {}
        while queued or self.running:
            clocks = [clock for _, clock in self.running.values()]
            if queued and may_start(clocks, self.cap, self.now()):
                self._start(queued.pop(0))
                continue
            poll = POLL_SECONDS if queued and len(self.running) < self.cap else TICK_SECONDS
            try:
                name, failure = self._finished.get(timeout=poll)
            except queue.Empty:
                self.tick()
                continue
            del self.running[name]
            if failure is not None:
                failures[name] = failure
            self.tick()
        return failures

    def join(self, timeout: float) -> None:
        """Wait up to `timeout` seconds in all for the running streams to end."""
        deadline = time.monotonic() + timeout
        for thread, _ in list(self.running.values()):
            thread.join(max(deadline - time.monotonic(), 0.0))

    def _start(self, stream: S) -> None:
        """Start a stream's sync in a thread of its own."""
        clock = WaitClock(now=self.now, started=self.now())
        stream.begin_sync(clock)
        # A daemon: a stream stuck in a request or a backoff wait must not hold up the exit
        # of an interrupted run (its records since the last STATE are simply re-read).
        thread = threading.Thread(
            target=self._work, args=(stream,), name=f"stream-{stream.name}", daemon=True
        )
        self.running[stream.name] = (thread, clock)
        thread.start()

    def _work(self, stream: S) -> None:
        """Sync a stream and report how it ended."""
        failure = None
        try:
            self.sync(stream)
        except BaseException as exc:  # noqa: BLE001 - reported by the waiting thread
            failure = exc
        self._finished.put((stream.name, failure))
