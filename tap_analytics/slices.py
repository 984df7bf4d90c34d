"""Slices: a stream's range of updated_at read side by side, split where the records are."""

from __future__ import annotations

import queue
import threading
import typing as t

from tap_analytics.pages import Page, WaitClock
from tap_analytics.sync_state import Read, spelled

if t.TYPE_CHECKING:
    from collections.abc import Callable, Generator, Iterator
    from datetime import datetime

    from tap_analytics.run import RequestSlots

SPLIT_AFTER_PAGES = 2  # pages of a stream read before it is split
PAGES_LEFT_TO_SPLIT = 4  # pages a range must still hold, by its last page's span, to be split
MAX_PROBES = 24  # probes one split may spend bisecting a range before giving up on it
WORKER_DONE = None  # what a worker puts last
Item = tuple[Read, "Page | BaseException | None"] | None


class Source(t.Protocol):
    """What slices need of a stream: its pages from an instant, and probes."""

    def read_pages(self, read: Read) -> Iterator[Page]:
        """The pages of a read, from its `since`, in order."""

    def probe(self, since: str | None) -> tuple[str, datetime] | None:
        """The value and instant of the first record at or after `since`, if any."""

    def last_instant(self, page: Page) -> datetime | None:
        """The instant of a page's last record, if it has one that parses."""


class Slicer:
    """Reads a stream's ranges side by side, splitting the largest whenever a slot falls idle."""

    # A split bisects the unread part of a range by time and snaps the cut to the first record
    # at or after the middle (a probe of one record); a half with nothing in it shrinks the
    # range instead, so the cuts land where the records are, however they are spread.

    def __init__(
        self,
        source: Source,
        slots: RequestSlots,
        lock: threading.Lock,
        reads: list[Read],
        rate_limited: Callable[[], bool] = lambda: False,
    ) -> None:
        """Read through `source` with slots beyond the first from `slots`; add splits to `reads`."""
        # `lock` guards the reads' ranges: the state is written from them under it. Once
        # `rate_limited` says so, no slice is added: the limit, not the latency, bounds the
        # run then, and slices cost requests (probes, and a page across each cut).
        self.rate_limited = rate_limited
        self.source = source
        self.slots = slots
        self.lock = lock
        self.changed = threading.Condition(lock)  # a split ended: the largest range may differ
        self.reads = reads
        self.active: list[Read] = []  # started and not finished
        self.waiting: list[Read] = []  # resumed ranges no worker has taken yet
        self.splitting: set[int] = set()  # ids of the reads being probed
        self.splittable = True  # false once a split found nothing worth splitting
        self.cancelled = threading.Event()
        self.items: queue.Queue[Item] = queue.Queue()
        # Pages requested, queued or being written, shared by every sliced stream: fewer
        # requests go out when writing is the bottleneck.
        self.room = slots.pages
        self.held = 0  # of the room, by this slicer: given back when it ends, however it ends
        self.holding = threading.Lock()

    def pages(self, reads: list[Read]) -> Generator[tuple[Read, Page | None]]:
        """Yield (read, page) as pages come, (read, None) as a read finishes."""
        self.waiting = list(reads)
        workers, pages = self._start_worker(required=True), 0
        try:
            while workers:
                # One more worker a page, once the stream proves longer than a page or two (a
                # short one is read as fast without slices, and without probes), and only while
                # the pages are written as fast as they come: the API is what is waited on.
                wanted = self.waiting or (
                    pages >= SPLIT_AFTER_PAGES and self.items.empty() and not self.rate_limited()
                )
                if wanted and self.splittable and self.slots.take():
                    workers += self._start_worker(required=False)
                item = self.items.get()
                if item is WORKER_DONE:
                    workers -= 1
                    continue
                read, content = item
                if isinstance(content, BaseException):
                    raise content
                pages += content is not None
                if content is None:
                    with self.lock:
                        read.finished = True
                        self.active.remove(read)
                yield read, content
                if isinstance(content, Page):
                    self._give_room()  # written
        finally:
            self._cancel()

    def _start_worker(self, *, required: bool) -> int:
        """Start a worker thread; return 1 (it gives its slot back when it ends)."""
        if required:
            self.slots.take(required=True)
        thread = threading.Thread(target=self._work, name="slice", daemon=True)
        thread.start()
        return 1

    def _put(self, item: Item) -> bool:
        """Hand an item to the reading thread; False once the slicer is cancelled."""
        if self.cancelled.is_set():
            return False
        self.items.put(item)
        return True

    def _make_room(self) -> bool:
        """Wait for room for one more page; False once the slicer is cancelled."""
        while not self.cancelled.is_set():
            if self.room.acquire(timeout=0.1):
                with self.holding:
                    if self.cancelled.is_set():
                        self.room.release()
                        return False
                    self.held += 1
                return True
        return False

    def _give_room(self) -> None:
        """Give back the room of a page written or not fetched (once the slicer ended: done)."""
        with self.holding:
            if self.held:
                self.held -= 1
                self.room.release()

    def _cancel(self) -> None:
        """Stop the workers at their next page; give back the room of pages never written."""
        with self.holding:
            self.cancelled.set()
            for _ in range(self.held):
                self.room.release()
            self.held = 0

    def _work(self) -> None:
        """Read ranges until none is left to take or split."""
        read: Read | None = None
        try:
            while not self.cancelled.is_set() and (read := self._next_read()) is not None:
                pages = iter(self.source.read_pages(read))
                while self._make_room():
                    page = next(pages, None)
                    if page is None:
                        self._give_room()
                        break
                    last = self.source.last_instant(page)
                    until = self._claim(read, last)
                    if not self._put((read, page)):
                        return
                    del page  # queued: not held through the next request too
                    if until is not None and last is not None and last >= until:
                        break  # the page that holds the range's end: no request past it
                if self.cancelled.is_set() or not self._put((read, None)):
                    return
        except BaseException as exc:  # noqa: BLE001 - raised by the reading thread
            if read is not None:
                self._put((read, exc))
        finally:
            self.slots.give_back()
            self._put(WORKER_DONE)

    def _claim(self, read: Read, last: datetime | None) -> datetime | None:
        """Note that a read fetched up to `last` (a split cuts only past it); its end."""
        with self.lock:
            if last is not None:
                before = read.claimed or read.start
                if before is not None and last > before:
                    read.page_span = last - before
                read.claimed = max(last, read.claimed or last)
            return read.until

    def _next_read(self) -> Read | None:
        """A resumed range no worker has, else a split of the largest one being read."""
        with self.lock:
            if self.waiting:
                read = self.waiting.pop(0)
                self.active.append(read)
                return read
        upper = None if self.rate_limited() else self._split()
        if upper is None:
            self.splittable = False
        return upper

    def _largest(self) -> tuple[Read, datetime, datetime] | None:
        """The active range with the most time left to read, its unread start and its end."""
        best: tuple[Read, datetime, datetime] | None = None
        for read in self.active:
            # Only a range whose pages came back: its last one tells how far a page reaches,
            # and a range a few pages from its end is read as soon without a probe and a cut.
            low, span = read.claimed, read.page_span
            if id(read) in self.splitting or read.catch_up or read.until is None or low is None:
                continue
            if low >= read.until or (span and read.until - low < PAGES_LEFT_TO_SPLIT * span):
                continue
            if best is None or read.until - low > best[2] - best[1]:
                best = (read, low, read.until)
        return best

    def _split(self) -> Read | None:
        """Cut the largest active range at a record near its unread middle; the upper part."""
        for _ in range(MAX_PROBES):
            with self.lock:
                while (largest := self._largest()) is None and self.splitting:
                    self.changed.wait()  # another split may leave a range worth splitting
                if largest is None:
                    return None
                read, low, high = largest
                self.splitting.add(id(read))
            try:
                upper = self._cut(read, low, high)
            finally:
                with self.lock:
                    self.splitting.discard(id(read))
                    self.changed.notify_all()
            if upper is not None:
                return upper
        return None

    def _cut(self, read: Read, low: datetime, high: datetime) -> Read | None:
        """Probe the middle of a range; split it there, or shrink it if nothing is there."""
        middle = low + (high - low) / 2
        if middle <= low:
            return None
        found = self.source.probe(spelled(middle))
        with self.lock:
            if read.finished or read.until != high:
                return None  # changed meanwhile: look again
            if found is None or found[1] >= high:
                read.until = middle  # nothing in [middle, high) now, nor later in this run
                return None
            value, instant = found
            if read.claimed is not None and instant <= read.claimed:
                return None  # the read got there first
            upper = Read(value, high, clock=WaitClock())
            read.until = instant  # ties at the cut go to the upper part only
            self.active.append(upper)
            self.reads.append(upper)
            return upper
