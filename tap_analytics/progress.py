"""Progress a person can read: a line per running stream every few seconds, then a summary."""

from __future__ import annotations

import contextlib
import threading
import time
import typing as t
from dataclasses import dataclass

from singer_sdk import metrics
from typing_extensions import override

from tap_analytics.errors import SyncInterruptedError

if t.TYPE_CHECKING:
    import logging
    from collections.abc import Iterator

PROGRESS_EVERY_SECONDS = 5.0  # between two progress lines of a stream


class RecordCounter(metrics.Counter):
    """The SDK's record counter, whose count another thread can read while it grows."""

    def __init__(self, stream: str, *, endpoint: str | None, log_interval: float) -> None:
        """Count the records of one stream, tagged as the SDK's record counter is."""
        tags: dict[str, t.Any] = {metrics.Tag.STREAM: stream}
        if endpoint:
            tags[metrics.Tag.ENDPOINT] = endpoint
        super().__init__(metrics.Metric.RECORD_COUNT, tags, log_interval=log_interval)
        self._logged = 0

    @override
    def _pop(self) -> None:
        # The SDK's counter resets `value` on each METRIC line; here it only grows, and each
        # METRIC line still counts the records since the one before.
        point = metrics.Point("counter", self.metric, self.value - self._logged, self.tags)
        metrics.log(self.logger, point)
        self._logged = self.value
        self.last_log_time = time.time()


class Tracked(t.Protocol):
    """What the progress lines read of a stream, from another thread, while it syncs."""

    @property
    def name(self) -> str:
        """The stream's name."""

    @property
    def logger(self) -> logging.Logger:
        """The stream's logger."""

    @property
    def replication_key(self) -> str | None:
        """The stream's replication key, if it has one."""

    @property
    def records_synced(self) -> int:
        """Records synced so far."""

    @property
    def bookmark(self) -> str | None:
        """The bookmark of the last STATE written."""


@dataclass
class _Sync:
    """One stream's sync in progress: when it started, and what the last line said."""

    stream: Tracked
    started: float
    seen_at: float
    seen_records: int = 0

    @property
    def bookmark(self) -> str:
        """The bookmark part of a line, or nothing for a stream without a replication key."""
        if self.stream.replication_key is None:
            return ""
        return f", bookmark {self.stream.bookmark or 'none'}"

    def report(self, now: float) -> None:
        """Log the records so far, the rate since the last line, and the bookmark."""
        records, elapsed = self.stream.records_synced, now - self.seen_at
        rate = (records - self.seen_records) / elapsed if elapsed > 0 else 0.0
        self.seen_at, self.seen_records = now, records
        self.stream.logger.info(
            "Syncing '%s': %s records so far, %s records/s%s",
            self.stream.name,
            f"{records:,}",
            f"{rate:,.0f}",
            self.bookmark,
        )

    def summarize(self, failure: BaseException | None) -> None:
        """Log the records, seconds and final bookmark, or that the stream did not finish."""
        records = f"{self.stream.records_synced:,} records"
        seconds = f"{time.monotonic() - self.started:.1f} s"
        if failure is None:
            self.stream.logger.info(
                "Synced '%s': %s in %s%s", self.stream.name, records, seconds, self.bookmark
            )
            return
        ending = "interrupted" if isinstance(failure, SyncInterruptedError) else "failed"
        self.stream.logger.warning(
            "Sync of '%s' %s after %s in %s%s",
            self.stream.name,
            ending,
            records,
            seconds,
            self.bookmark,
        )


class Progress:
    """The progress lines of one run, logged by the thread that waits for its streams."""

    def __init__(self) -> None:
        """Start with no stream running."""
        self._every = PROGRESS_EVERY_SECONDS
        self._due = time.monotonic() + self._every
        self._syncs: dict[str, _Sync] = {}
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def syncing(self, stream: Tracked) -> Iterator[None]:
        """Report on a stream while it syncs in this thread, then log its summary."""
        now = time.monotonic()
        sync = _Sync(stream, now, now)
        with self._lock:
            self._syncs[stream.name] = sync
        try:
            yield
        except BaseException as failure:
            sync.summarize(failure)
            raise
        else:
            sync.summarize(None)
        finally:
            with self._lock:
                del self._syncs[stream.name]

    def tick(self) -> None:
        """Log a line per running stream once the interval has passed; call it often."""
        now = time.monotonic()
        if now < self._due:
            return
        self._due = now + self._every
        with self._lock:
            syncs = list(self._syncs.values())
        for sync in syncs:
            sync.report(now)
