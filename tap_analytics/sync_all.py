"""A run: the selected streams synced side by side, the first and last STATE, one verdict."""

from __future__ import annotations

import functools
import typing as t

from tap_analytics.errors import InvalidStateError, SyncIncompleteError, SyncInterruptedError
from tap_analytics.pacing import PacedThreads
from tap_analytics.progress import Progress
from tap_analytics.state import later_than_now
from tap_analytics.sync import AnalyticsStream

if t.TYPE_CHECKING:
    import logging

    from singer_sdk import Tap

    from tap_analytics.run import RunContext

STOP_GRACE = 2.0  # seconds an interrupted run waits for its streams' last checkpoints


def sync_selected(tap: Tap, run: RunContext, max_parallel_streams: int) -> None:
    """Sync every selected stream; raise at the end if any failed, at once if interrupted."""
    selected = [s for s in tap.streams.values() if isinstance(s, AnalyticsStream) and s.selected]
    progress = Progress()

    def sync_stream(stream: AnalyticsStream) -> None:
        # The SDK's loop also calls finalize_state_progress_markers here; the record loop
        # finalizes its own state and writes the last STATE itself.
        if run.stop.is_set():
            raise SyncInterruptedError(0)
        with progress.syncing(stream):
            stream.sync()

    threads = PacedThreads(max_parallel_streams, sync_stream, progress.tick)
    try:  # a signal may come during any write to stdout, the first STATE's included
        if tap.state:
            tap.state_writer.write_state(tap.state)
        problems = [problem for stream in selected if (problem := stream.check_state())]
        if problems:
            raise InvalidStateError("; ".join(problems))
        warn_of_future_bookmarks(selected, tap.logger)
        run.slots.expect(len(selected))  # each stream's first request is kept for it
        failures = threads.run(selected)  # failures are collected; the other streams go on
        run.writer.flush()
    except SyncInterruptedError as interrupted:
        run.stop.set()
        threads.join(timeout=STOP_GRACE)  # their last checkpoints, unless a request hangs
        # A stream still in a request writes nothing after this STATE. A reader that stopped
        # reading holds the STATE back: then the run must end without it, not wait forever.
        last_state = functools.partial(tap.state_writer.write_state, tap.state)
        interrupted.stdout_stuck = not run.writer.close(last_state, timeout=STOP_GRACE)
        raise
    for stream in selected:
        stream.log_sync_costs()
    if failures:
        raise SyncIncompleteError(failure_summary(failures, [stream.name for stream in selected]))


def warn_of_future_bookmarks(streams: list[AnalyticsStream], logger: logging.Logger) -> None:
    """Warn of a bookmark later than now: its stream would read nothing, run after run."""
    for stream in streams:
        bookmark = stream.stream_state.get("replication_key_value")
        if later_than_now(bookmark):
            logger.warning(
                "The bookmark of stream '%s' is %s, later than now: the stream reads "
                "nothing until records are updated after it; fix or remove it in the state "
                "if that is not intended",
                stream.name,
                bookmark,
            )


def failure_summary(failures: dict[str, BaseException], streams: list[str]) -> str:
    """One line naming every failed stream and its cause, the delivered ones, what to do."""
    streams_by_cause: dict[str, list[str]] = {}
    for name, failure in sorted(failures.items()):
        streams_by_cause.setdefault(str(failure).rstrip(". "), []).append(name)
    causes = "; ".join(f"{', '.join(names)}: {cause}" for cause, names in streams_by_cause.items())
    delivered = sorted(name for name in streams if name not in failures)
    outcome = "No stream was delivered in full"
    if delivered:
        outcome = f"Delivered in full: {', '.join(delivered)}"
    return (
        f"{len(failures)} stream(s) incomplete ({', '.join(sorted(failures))}). {causes}. "
        f"{outcome}; rerun with the last STATE to resume."
    )
