"""One sync of a stream as one object: where it starts and ends, and where each read has got to."""

from __future__ import annotations

import threading
import typing as t
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from tap_analytics.pages import WaitClock
from tap_analytics.state import BadBookmarkError, Bookmark, parse_instant, within_clock

if t.TYPE_CHECKING:
    from collections.abc import Iterable

    from tap_analytics.progress import RecordCounter

MAX_TIED_IDS = 1000  # ids kept of the records at a bookmark's instant; more are re-sent instead


def record_key(record: dict[str, t.Any], fields: tuple[str, ...]) -> t.Any:  # noqa: ANN401
    """A record's primary key as it goes into the state: the value, or a list of values."""
    if len(fields) == 1:
        return record.get(fields[0])
    return [record.get(name) for name in fields]


def hashable(key: t.Hashable | list[t.Any]) -> t.Hashable:
    """A primary key from the state in a form a set holds."""
    return tuple(key) if isinstance(key, list) else key


class Position:
    """Where a read has delivered to: the latest instant, and the keys of the records at it."""

    __slots__ = ("instant", "keys", "value")

    def __init__(self, value: str | None = None, keys: list[t.Any] | None = None) -> None:
        """Start at a stored value and the keys delivered at it, or nowhere."""
        mark = Bookmark(value)
        self.value, self.instant = mark.value, mark.instant
        self.keys: list[t.Any] | None = [] if keys is None else keys  # None: too many to keep

    def advance(
        self,
        records: list[dict[str, t.Any]],
        values: list[t.Any],
        instants: list[datetime],
        key_fields: tuple[str, ...],
    ) -> None:
        """Move to the last of delivered records, in order of their instants, within the clock."""
        if (kept := within_clock(instants)) < len(instants):  # later ones never bookmark
            records, values, instants = records[:kept], values[:kept], instants[:kept]
        if not instants:
            return
        last = instants[-1]
        if self.instant is None or last > self.instant:
            self.value, self.instant, self.keys = values[-1], last, []
        first_tied = len(instants) - 1
        while first_tied > 0 and instants[first_tied - 1] == last:
            first_tied -= 1
        if self.keys is None or not key_fields:
            return
        self.keys.extend(record_key(record, key_fields) for record in records[first_tied:])
        if len(self.keys) > MAX_TIED_IDS:
            self.keys = None


@dataclass
class Read:
    """Reading records from an instant (inclusive) to another (exclusive), in the API's order."""

    since: str | None
    until: datetime | None  # None: to the end of the list
    skip: frozenset[t.Hashable] = frozenset()  # keys at `since` a run before already delivered
    position: Position = field(default_factory=Position)
    clock: WaitClock = field(default_factory=WaitClock)
    ended: bool = False  # a record at or past `until` was seen: nothing more to read
    catch_up: bool = False  # read after every other: what changed while they were read
    finished: bool = False  # its last page is written
    claimed: datetime | None = None  # the last instant of the pages fetched: splits cut past it
    page_span: timedelta | None = None  # the time its last page covered: how far a page reaches
    records: int = 0  # written so far
    start: datetime | None = field(init=False)  # `since` as an instant

    def __post_init__(self) -> None:
        """Parse the start."""
        self.start = Bookmark(self.since).instant

    @property
    def resume_from(self) -> str | None:
        """Where a rerun starts this read again: the last delivered instant, else its start."""
        return self.position.value if self.position.value is not None else self.since


@dataclass
class StreamSync:
    """One sync of one stream: created as it begins, read by the progress lines and pacing."""

    start: str | None  # the replication value it starts from
    end: datetime | None  # exclusive upper bound of the replication key
    bookmark: Bookmark  # in the last STATE written
    initial: dict[str, t.Any]  # the stream's state as the sync began
    reads: list[Read]
    clock: WaitClock = field(default_factory=WaitClock)  # the pacing watches the first read's
    records: RecordCounter | None = None
    verbatim: bool = True  # records go out as they came: nothing selects, maps or flattens them
    disordered: bool = False  # the API broke its order: the stream keeps the state it began with
    syncing: bool = False  # its record loop has started
    sliced: bool = False  # its reads are ranges of the replication key, read side by side
    delivered: Position | None = None  # sliced: the latest position of the finished reads
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def finish(self, read: Read) -> None:
        """Note that a read's last page is written (under `lock`)."""
        read.finished = True
        if not self.sliced:
            return
        # Kept as its position only: a long history is cut into more slices than it can hold.
        self.reads.remove(read)
        self.delivered = latest((self.delivered, read.position))

    @property
    def records_synced(self) -> int:
        """Records synced so far."""
        return 0 if self.records is None else self.records.value


def latest(positions: Iterable[Position | None]) -> Position | None:
    """The first of the positions that reached the latest instant; None if none reached one."""
    reached = [p for p in positions if p is not None and p.instant is not None]
    return max(reached, key=lambda position: t.cast("datetime", position.instant), default=None)


def spelled(instant: datetime) -> str:
    """An instant as an RFC 3339 value with microseconds, as `updated_since` takes it."""
    return instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def valid_slice(entry: object) -> bool:
    """Tell whether a state's slice entry has a usable range."""
    if not isinstance(entry, dict):
        return False
    for name in ("since", "until"):
        value = entry.get(name)
        if value is not None:
            try:
                parse_instant(value, what=name)
            except BadBookmarkError:
                return False
    return isinstance(entry.get("keys", []), list)


def slice_entry(read: Read) -> dict[str, t.Any]:
    """A range still to read, as the state keeps it: where to resume, the end, the keys there."""
    entry: dict[str, t.Any] = {
        "since": read.resume_from,
        "until": None if read.until is None else spelled(read.until),
    }
    if read.position.value is not None and read.position.keys:
        entry["keys"] = list(read.position.keys)
    if read.catch_up:
        entry["catch_up"] = True
    return entry


def low_water_mark(pending: list[Read]) -> str | None:
    """The earliest value a rerun must read from to pass no unread record; None: the start."""
    starts = [(read.resume_from, Bookmark(read.resume_from).instant) for read in pending]
    if not starts or any(instant is None for _, instant in starts):
        return None
    return min(starts, key=lambda start: t.cast("datetime", start[1]))[0]
