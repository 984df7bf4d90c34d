"""The sync engine of a stream: a page at a time, checkpoints with STATE, the verbatim path."""

from __future__ import annotations

import copy
import itertools
import operator
import typing as t
from dataclasses import dataclass
from datetime import UTC, datetime

import requests
from singer_sdk import RESTStream, metrics
from singer_sdk.helpers._catalog import get_selected_schema
from singer_sdk.helpers._state import write_starting_replication_value
from singer_sdk.mapper import SameRecordTransform
from singer_sdk.singerlib.catalog import REPLICATION_FULL_TABLE
from typing_extensions import override

from tap_analytics.client import ResourceStream
from tap_analytics.errors import BadPageError, InvalidStateError, SyncInterruptedError, json_type
from tap_analytics.evolution import Contract, SchemaGuard, widened
from tap_analytics.output import encode_lines
from tap_analytics.pages import Page, WaitClock, fetched_pages, first_record
from tap_analytics.progress import RecordCounter
from tap_analytics.slices import Slicer
from tap_analytics.state import (
    CLOCK_TOLERANCE,
    BadBookmarkError,
    Bookmark,
    parse_instant,
    parse_instants,
    starting_value,
    within_clock,
)
from tap_analytics.sync_state import (
    Position,
    Read,
    StreamSync,
    hashable,
    latest,
    low_water_mark,
    record_key,
    slice_entry,
    spelled,
    valid_slice,
)

if t.TYPE_CHECKING:
    from collections.abc import Generator, Iterable, Iterator

    from singer_sdk.helpers.types import Context

STATE_EVERY = 1000  # records between STATE messages: the most a killed run re-reads
KEYS_AT_BOOKMARK = "keys_at_bookmark"  # primary keys delivered at the bookmark's instant
SLICES = "slices"  # the ranges a sliced sync has still to read, in the stream's state
BOOKMARK_KEYS = ("replication_key", "replication_key_value", KEYS_AT_BOOKMARK)


class AnalyticsStream(ResourceStream):
    """A resource synced a page at a time, with a bookmark that only moves past written data."""

    current: StreamSync | None = None  # this stream's sync, from when it begins

    @override
    def request_records(self, context: Context | None) -> Iterable[dict[str, t.Any]]:
        since = None if self.current is None else self.current.start
        for page in fetched_pages(self, context, WaitClock(), since):
            yield from page.records

    @override
    def get_replication_key_signpost(self, context: Context | None = None) -> None:
        return None  # records are sorted: the last one written is the bookmark

    @override
    def get_record_counter(
        self, *, endpoint: str | None = None, log_interval: float = metrics.DEFAULT_LOG_INTERVAL
    ) -> RecordCounter:
        return RecordCounter(self.name, endpoint=endpoint, log_interval=log_interval)

    @property
    def records_synced(self) -> int:
        """Records synced so far by this stream's sync (read by the progress lines)."""
        return 0 if self.current is None else self.current.records_synced

    @property
    def bookmark(self) -> str | None:
        """The replication value of the last STATE written (read by the progress lines)."""
        return None if self.current is None else self.current.bookmark.value

    def _schema_guard(self) -> SchemaGuard:
        """This run's watch over new fields and unexpected types."""
        contract = Contract.of(self.resource.schema_contract, self.config["schema_evolution"])
        return SchemaGuard(self.name, contract, self.effective_schema, self.logger)

    def _deselected(self, name: str) -> bool:
        """Tell whether the catalog deselects a top-level field by name."""
        return not self.mask[("properties", name)]

    def _widen_schema(self, added: dict[str, dict[str, t.Any]]) -> None:
        """Add fields to the stream's schema and to what selection and stream maps know of it."""
        self._schema = widened(self.schema, added)
        if self._input_schema is not None:
            self._input_schema = widened(self._input_schema, added)
        # New fields are selected through their stream (the mask defaults to the parent).
        selected = get_selected_schema(self.name, self.effective_schema, self.mask)
        self._tap.mapper.register_raw_stream_schema(self.name, selected, self.primary_keys)
        self._stream_maps = None  # read again from the mapper

    def _meet_unknown_fields(
        self, record: dict[str, t.Any], guard: SchemaGuard, lines: list[bytes] | None
    ) -> tuple[dict[str, t.Any], bool]:
        """Apply the contract to a record with fields the schema lacks; tell if it widened."""
        added, dropped = guard.unknown_fields(record, self._deselected)
        if added:
            self._widen_schema(added)
            guard.learn(added)
            if lines is not None:  # the widened SCHEMA goes before the record, in order
                writer = self.run.writer
                lines.extend(writer.format_message(m) for m in self._generate_schema_messages())
        if dropped:
            record = {name: value for name, value in record.items() if name not in dropped}
        return record, bool(added)

    def _writes_records_verbatim(self) -> bool:
        """Tell whether records can skip selection, conformance and mapping."""
        maps = self.stream_maps
        return (
            all(self.mask.values())
            and len(maps) == 1
            and type(maps[0]) is SameRecordTransform
            and maps[0].stream_alias == self.name
            and not maps[0].flattening_enabled
        )

    def _refusal(self, record: object, required: tuple[str, ...]) -> BadPageError:
        """Say why a record is refused: not an object, or no key or replication value."""
        if not isinstance(record, dict):
            return BadPageError(f"stream '{self.name}': a record is not an object: {record!r:.80}")
        field = next(field for field in required if record.get(field) is None)
        return BadPageError(
            f"stream '{self.name}': a record has no '{field}' (id {record.get('id')!r}), so the "
            "tap cannot key or bookmark it; report it to the API provider"
        )

    def _accepted(
        self, page: list[t.Any], required: tuple[str, ...]
    ) -> tuple[list[dict[str, t.Any]], list[t.Any], Exception | None]:
        """The records of a page up to the first one refused, their values, and the refusal.

        The values are the last required field's: the replication key's, when there is one.
        """
        bad = len(page)
        if not all(map(isinstance, page, itertools.repeat(dict))):
            bad = next(i for i, record in enumerate(page) if not isinstance(record, dict))
        values: list[t.Any] = []
        for field in required:  # a column at a time, each in one pass of `map`
            values = list(map(dict.get, page[:bad], itertools.repeat(field)))
            if None in values:
                bad = values.index(None)
        if bad == len(page):
            return page, values, None
        return page[:bad], values[:bad], self._refusal(page[bad], required)

    def _post_processed(
        self, page: list[dict[str, t.Any]], context: Context | None
    ) -> list[dict[str, t.Any]]:
        """Hand each record to post_process; keep those it returns."""
        # As in the SDK's loop, post_process sees the raw record: it may drop invalid ones.
        kept = (self.post_process(raw, context) for raw in page)
        return [record for record in kept if record is not None]

    def _page_lines(self, records: list[dict[str, t.Any]], extracted_at: datetime) -> bytes:
        """Encode records' RECORD messages as the SDK writes them, verbatim, in one call."""
        name, version = self.name, self._stream_version
        messages: list[dict[str, t.Any]] = [
            {"type": "RECORD", "stream": name, "record": r, "time_extracted": extracted_at}
            for r in records
        ]
        if version is not None:  # a replace disposition's records carry their version
            for message in messages:
                message["version"] = version
        return encode_lines(messages)

    def _write(
        self,
        sync: StreamSync,
        read: Read,
        part: CheckedPage,
        guard: SchemaGuard,
        lines: list[bytes] | None,
    ) -> list[dict[str, t.Any]]:
        """Encode records under the schema contract, moving the read; return them as written."""
        records, keyed, key_fields = part.records, part.keyed, self.resource.primary_key
        if sync.verbatim and all(map(guard.names.issuperset, records)):
            if lines is not None:
                lines.append(self._page_lines(records, part.extracted_at))
            if keyed:
                read.position.advance(records, *keyed, key_fields)
            return records
        written = []
        for index, record in enumerate(records):  # one at a time: maps, or new fields
            screened = record
            if not record.keys() <= guard.names:
                screened, grew = self._meet_unknown_fields(record, guard, lines)
                if grew:
                    sync.verbatim = self._writes_records_verbatim()
            if lines is not None:
                lines.extend(self._encode(sync, screened, part.extracted_at))
            if keyed:  # record by record: a refusal further on keeps these written
                values, instants = keyed
                one = slice(index, index + 1)
                read.position.advance(records[one], values[one], instants[one], key_fields)
            written.append(screened)
        return written

    def _send(self, lines: list[bytes] | None) -> None:
        """Write a part's lines out at once: a stream holds a page of them, no more."""
        if lines:
            self.run.writer.write_lines(lines)
            lines.clear()

    def _encode(
        self, sync: StreamSync, record: dict[str, t.Any], extracted_at: datetime
    ) -> Iterable[bytes]:
        """Encode a record's RECORD message line(s); its fields are all in the schema."""
        if sync.verbatim:
            return (self._page_lines([record], extracted_at),)
        writer = self.run.writer
        return [writer.format_message(m) for m in self._generate_record_messages(record)]

    def check_state(self) -> str | None:
        """Say what is wrong with the stored bookmark, if anything."""
        try:
            self._planned_sync()
        except InvalidStateError as exc:
            return str(exc)
        return None

    def _planned_sync(self, clock: WaitClock | None = None) -> StreamSync:
        """This stream's next sync, from its state and the settings; refuse a bad bookmark."""
        state = self.stream_state
        initial = copy.deepcopy(dict(state))
        if self.resource.incremental is None or self.replication_method == REPLICATION_FULL_TABLE:
            # A full read (the catalog may choose one): every record the API lists, as the
            # SDK reads a full-table stream; the bookmark then moves to the last one written.
            clock = clock or WaitClock()
            return StreamSync(
                None, None, Bookmark(), initial, [Read(None, None, clock=clock)], clock
            )
        bookmark = state.get("replication_key_value")
        try:
            start = starting_value(
                (f"the bookmark of stream '{self.name}'", bookmark),
                ("start_date", self.config.get("start_date")),
                (
                    f"the initial_value of stream '{self.name}'",
                    self.resource.incremental.initial_value,
                ),
            )
        except BadBookmarkError as exc:
            msg = f"{exc}; fix or remove it in the state to resume"
            raise InvalidStateError(msg) from None
        ends = (self.config.get("end_date"), self.resource.incremental.end_value)
        # Both were validated with the settings; the earlier one closes the window.
        end = min((parse_instant(end, what="end") for end in ends if end), default=None)
        stored = Bookmark(bookmark if isinstance(bookmark, str) else None)
        sync = StreamSync(start, end, stored, initial, reads=[], clock=clock or WaitClock())
        if (entries := state.get(SLICES)) is not None:  # a sliced run was cut short: resume it
            sync.reads, sync.sliced = self._resumed_reads(entries, start, end), True
            if sync.reads:  # the pacing watches the first read's waits
                sync.reads[0].clock = sync.clock
            return sync
        read = Read(start, end, clock=sync.clock)
        if keys := self._keys_at(stored, start):  # delivered there: skipped, and kept
            read.skip, read.position = frozenset(map(hashable, keys)), Position(start, keys)
        sync.reads.append(read)
        # Slices end this long before the run began, and a catch-up reads from there after
        # them: an API whose clock is behind ours by up to this stamps changes made during the
        # run later than the cut.
        cut = datetime.now(UTC) - CLOCK_TOLERANCE
        if self._may_slice() and (read.start is None or read.start < cut):
            sync.sliced = True
            if end is None or end > cut:  # what changes during the run lands past `cut`
                read.until = cut
                sync.reads.append(Read(spelled(cut), end, catch_up=True))
        return sync

    def _may_slice(self) -> bool:
        """Tell whether this stream's sync may read slices side by side."""
        return (
            self.run.slots.cap > 1
            and self.ABORT_AT_RECORD_COUNT is None
            and self.resource.page_size is not None
            and self.start_param is not None
            and self._fetches_its_own_pages()
        )

    def _resumed_reads(
        self, entries: object, start: str | None, end: datetime | None
    ) -> list[Read]:
        """The ranges a sliced run left unread, within this run's start and end."""
        if not isinstance(entries, list) or not all(map(valid_slice, entries)):
            msg = (
                f"the {SLICES} of stream '{self.name}' in the state are not a list of "
                '{"since": <RFC 3339 or null>, "until": <RFC 3339 or null>} objects; remove '
                f"'{SLICES}' to resume from the stream's replication_key_value"
            )
            raise InvalidStateError(msg)
        floor = Bookmark(start).instant
        reads = []
        for entry in entries:
            since, keys = entry.get("since"), entry.get("keys") or []
            read = Read(since, Bookmark(entry.get("until")).instant, clock=WaitClock())
            if floor is not None and (read.start is None or read.start < floor):
                read = Read(start, read.until)  # start_date or initial_value is later
                keys = []
            if end is not None and (read.until is None or read.until > end):
                read.until = end
            if read.until is not None and read.start is not None and read.start >= read.until:
                continue
            if keys:
                read.skip, read.position = frozenset(map(hashable, keys)), Position(since, keys)
            read.catch_up = entry.get("catch_up") is True
            reads.append(read)
        return reads

    def _keys_at(self, stored: Bookmark, start: str | None) -> list[t.Any]:
        """The keys a run before delivered at the bookmark, when this run starts there."""
        keys = self.stream_state.get(KEYS_AT_BOOKMARK)
        if keys is None or stored.instant is None or start is None:
            return []
        if not isinstance(keys, list):
            msg = (
                f"the {KEYS_AT_BOOKMARK} of stream '{self.name}' in the state is a JSON "
                f"{json_type(keys)}, not a list of primary keys; remove it to resume (the "
                "records at the bookmark are then sent again)"
            )
            raise InvalidStateError(msg)
        if parse_instant(start, what="start") != stored.instant:
            return []  # start_date or initial_value is later: nothing to skip
        return list(keys)

    def begin_sync(self, clock: WaitClock | None = None) -> StreamSync:
        """Begin a new sync of this stream: its own state object, the session set up."""
        session = self.requests_session
        # Resolve proxies once: requests would otherwise look them up on every request.
        session.proxies = requests.utils.get_environ_proxies(self.url_base)
        session.trust_env = False
        sync = self.current = self._planned_sync(clock)
        if self.resource.incremental and self.replication_method == REPLICATION_FULL_TABLE:
            self.logger.info(
                "Stream '%s' is FULL_TABLE in the catalog: every record is read, whatever the "
                "bookmark (%s), start_date and end_date say",
                self.name,
                self.stream_state.get("replication_key_value", "none"),
            )
        if self.replication_key:
            write_starting_replication_value(self.stream_state, sync.start)
        sync.verbatim = self._writes_records_verbatim()
        return sync

    def _checkpoint(self, sync: StreamSync, lines: list[bytes] | None, *, final: bool) -> None:
        """Write lines, then move the bookmark past them and write STATE."""

        def advance() -> dict[str, t.Any]:
            state = self.stream_state
            if self.replication_key:
                self._mark_progress(sync, state)
            if final:
                self._finalize_state(state)  # drops the starting value, as the SDK's loop does
            return dict(self.tap_state)

        self.run.writer.checkpoint(lines or (), advance)
        if lines:
            lines.clear()

    def _mark_progress(self, sync: StreamSync, state: dict[str, t.Any]) -> None:
        """Set the stream's bookmark to what its reads have delivered."""
        if sync.disordered:  # nothing read this run can be trusted to be a bound
            for name in [name for name in state if name not in sync.initial]:
                del state[name]
            state.update(copy.deepcopy(sync.initial))
            sync.bookmark = Bookmark(state.get("replication_key_value"))
            return
        if sync.sliced:
            self._mark_sliced_progress(sync, state)
            return
        (read,) = sync.reads
        position = read.position
        if position.value is None:
            return
        sync.bookmark.advance(position.value)
        state.pop(SLICES, None)  # a full read covered any range a sliced run left
        state["replication_key"] = self.replication_key
        state["replication_key_value"] = sync.bookmark.value
        if position.keys is not None and position.instant == sync.bookmark.instant:
            state[KEYS_AT_BOOKMARK] = list(position.keys)
        else:
            state.pop(KEYS_AT_BOOKMARK, None)

    def _mark_sliced_progress(self, sync: StreamSync, state: dict[str, t.Any]) -> None:
        """Keep the unread ranges in the state, and a bookmark below all of them."""
        with sync.lock:
            pending = [read for read in sync.reads if not read.finished]
            entries = [slice_entry(read) for read in pending]
            lowest = low_water_mark(pending)
            reached = latest((sync.delivered, *(read.position for read in sync.reads)))
        state.pop(KEYS_AT_BOOKMARK, None)
        if pending:
            state[SLICES] = entries
            value = lowest
        else:  # every range read: the bookmark is the latest record delivered, as unsliced
            state.pop(SLICES, None)
            if reached is None:  # nothing delivered: the state as it began
                state.update(
                    {k: v for k, v in sync.initial.items() if k != SLICES and k in BOOKMARK_KEYS}
                )
                return
            value = reached.value
            if reached.keys is not None:
                state[KEYS_AT_BOOKMARK] = list(reached.keys)
        sync.bookmark = Bookmark(value)
        if value is None:  # a range from the list's beginning is still unread
            state.pop("replication_key_value", None)
            return
        state["replication_key"] = self.replication_key
        state["replication_key_value"] = value

    def _pages(
        self, context: Context | None, sync: StreamSync
    ) -> Iterator[tuple[Read, Page | None]]:
        """The pages to sync, by read, then (read, None) as each ends; a --test run's first few."""
        reads = sync.reads
        if sync.sliced:
            side_by_side = [read for read in reads if not read.catch_up]
            throttle = self.run.throttle
            slicer = Slicer(
                StreamSource(self, context),
                self.run.slots,
                sync.lock,
                reads,
                rate_limited=lambda: throttle.met_limit,
            )
            yield from slicer.pages(side_by_side)
            reads = [read for read in reads if read.catch_up]  # once the others are written
        limit = self.ABORT_AT_RECORD_COUNT  # a clean stop, not the SDK's abort exception
        for read in reads:
            for page in self._read_pages(context, read):
                if limit is None:
                    yield read, page
                else:
                    yield read, Page(page.records[:limit], page.extracted_at)
                    limit -= min(limit, len(page.records))
                    if not limit:
                        return
                if read.ended:
                    break
            yield read, None

    def _fetches_its_own_pages(self) -> bool:
        """Tell whether pages come from this class's requests, not a subclass's records."""
        return type(self).get_records is RESTStream.get_records and (
            type(self).request_records is AnalyticsStream.request_records
        )

    def _read_pages(self, context: Context | None, read: Read) -> Iterator[Page]:
        """The pages of one read, each with its extraction time."""
        if self._fetches_its_own_pages():
            yield from fetched_pages(self, context, read.clock, read.since)
            return
        records = iter(self.get_records(context))  # a subclass's records, in slices
        while records_page := list(itertools.islice(records, self.resource.page_size or 100)):
            yield Page(records_page, datetime.now(UTC))

    def _checked(
        self,
        sync: StreamSync,
        read: Read,
        page: Page,
        required: tuple[str, ...],
        guard: SchemaGuard,
    ) -> CheckedPage:
        """The records of a page before the first refused one or the read's end."""
        records, values, refusal = self._accepted(page.records, required)  # the key goes last
        typed, type_refusal = guard.first_refused(records)
        if type_refusal is not None:
            records, values, refusal = records[:typed], values[:typed], type_refusal
        key = self.replication_key
        if not key:
            return CheckedPage(records, None, refusal, page.extracted_at)
        instants, bad = parse_instants(values, what=key)
        if bad is not None:
            at = len(instants)
            refusal = BadPageError(
                f"stream '{self.name}': record {records[at].get('id')!r} refused: {bad}; the tap "
                "cannot bookmark it: report it to the API provider"
            )
            records, values = records[:at], values[:at]
        floor = read.position.instant or read.start
        back = step_back(instants, floor)
        if back is not None:  # the rest of the list cannot be trusted to be in order
            previous = instants[back - 1] if back else t.cast("datetime", floor)
            refusal = self._disorder(records[back], values[back], previous)
            records, values, instants = records[:back], values[:back], instants[:back]
            sync.disordered = True
        if read.skip and instants and instants[0] == read.start:
            fields = self.resource.primary_key
            seen = 0  # the records at the bookmark's instant come first
            while seen < len(instants) and instants[seen] == read.start:
                seen += 1
            kept = [
                i
                for i in range(len(records))
                if i >= seen or hashable(record_key(records[i], fields)) not in read.skip
            ]
            if len(kept) < len(records):
                records = [records[i] for i in kept]
                values, instants = [values[i] for i in kept], [instants[i] for i in kept]
        if read.until is not None:
            end = read.until
            cut = next((i for i, instant in enumerate(instants) if instant >= end), None)
            if cut is not None:  # sorted by the key: the rest belongs to the next window
                records, values, instants = records[:cut], values[:cut], instants[:cut]
                read.ended, refusal = True, None
        self._warn_ahead_of_clock(records, values, instants)
        return CheckedPage(records, (values, instants), refusal, page.extracted_at)

    def _warn_ahead_of_clock(
        self, records: list[dict[str, t.Any]], values: list[t.Any], instants: list[datetime]
    ) -> None:
        """Name each record to be written whose replication value will not move the bookmark."""
        for index in range(within_clock(instants), len(instants)):
            self.logger.warning(
                "stream '%s': record %r has %s %s, more than %g minutes ahead of this "
                "machine's clock; written, but the bookmark stays before it (the next run reads "
                "it again)",
                self.name,
                records[index].get("id"),
                self.replication_key,
                values[index],
                CLOCK_TOLERANCE.total_seconds() / 60,
            )

    def _disorder(
        self, record: dict[str, t.Any], value: object, previous: datetime
    ) -> BadPageError:
        """Say that the API listed a record out of the order of the replication key."""
        return BadPageError(
            f"stream '{self.name}': the API listed a record with {self.replication_key} {value} "
            f"(id {record.get('id')!r}) after one at {previous.isoformat()}, out of the ascending "
            "order the tap relies on to resume without loss; the stream stops and keeps the "
            "bookmark it started from: report it to the API provider"
        )

    @override
    def _sync_records(
        self,
        context: Context | None = None,
        *,
        write_messages: bool = True,
    ) -> Generator[dict[str, t.Any], None, None]:
        # Replaces the SDK's per-record loop (pinned to singer-sdk 0.54) with one a page at a
        # time: checks, instants and RECORD encoding once a page, bookmarks by instant, STATE
        # every STATE_EVERY records, one locked writer, verbatim when nothing maps records.
        # No partitions: no resource of the API is listed per parent or per partition.
        sync = self.current
        if sync is None or sync.syncing:  # not begun by the run (stream.sync() called alone)
            sync = self.begin_sync()
        sync.syncing = True
        # post_process is the SDK's public per-record hook; skipped when nobody overrides it.
        hooked = type(self).post_process is not RESTStream.post_process
        stop = self.run.stop
        lines: list[bytes] | None = [] if write_messages and self.selected else None
        key = self.replication_key
        required = (*self.resource.primary_key, *((key,) if key else ()))
        guard = self._schema_guard()
        since_state = 0
        complete = False
        with self.get_record_counter() as counter, self.get_sync_timer():
            sync.records = counter
            try:
                for read, page in self._pages(context, sync):
                    if stop.is_set():
                        raise SyncInterruptedError(0)
                    if page is None:
                        with sync.lock:
                            sync.finish(read)
                        continue
                    if hooked:
                        page.records = self._post_processed(page.records, context)
                    checked = self._checked(sync, read, page, required, guard)
                    while checked.records:  # in parts that end where STATE is due
                        part = checked.take(STATE_EVERY - since_state)
                        written = self._write(sync, read, part, guard, lines)
                        self._send(lines)
                        counter.increment(len(written))
                        read.records += len(written)
                        since_state += len(written)
                        if since_state >= STATE_EVERY:
                            self._checkpoint(sync, lines, final=False)
                            since_state = 0
                        yield from written
                    if checked.refusal is not None:
                        raise checked.refusal
                complete = self.ABORT_AT_RECORD_COUNT is None  # --test stops short, by plan
            finally:
                self._checkpoint(sync, lines, final=complete)
        if complete and self.emit_activate_version_messages and self._stream_version is not None:
            self._write_activate_version_message(self._stream_version)


def step_back(instants: list[datetime], floor: datetime | None) -> int | None:
    """The index of the first instant earlier than the one before it (or than `floor`)."""
    chain = instants if floor is None else [floor, *instants]
    if all(map(operator.le, chain, chain[1:])):  # the usual page: one pass in C
        return None
    after = next(
        i for i, pair in enumerate(itertools.pairwise(chain), start=1) if pair[0] > pair[1]
    )
    return after if floor is None else after - 1  # an index of `instants`, not of `chain`


@dataclass
class CheckedPage:
    """A page's records that passed the checks, with their replication values and instants."""

    records: list[dict[str, t.Any]]
    keyed: tuple[list[t.Any], list[datetime]] | None  # values and instants, record by record
    refusal: Exception | None  # why the page stops short: the records after it are not synced
    extracted_at: datetime

    def take(self, count: int) -> CheckedPage:
        """Remove and return the first `count` records, with their values and instants."""
        part, self.records = self.records[:count], self.records[count:]
        if self.keyed is None:
            return CheckedPage(part, None, None, self.extracted_at)
        values, instants = self.keyed
        self.keyed = values[count:], instants[count:]
        return CheckedPage(part, (values[:count], instants[:count]), None, self.extracted_at)


class StreamSource:
    """A stream's pages and probes, as its slices read them."""

    def __init__(self, stream: AnalyticsStream, context: Context | None) -> None:
        """Read `stream` in `context`."""
        self.stream = stream
        self.context = context
        self.key = t.cast("str", stream.replication_key)

    def read_pages(self, read: Read) -> Iterator[Page]:
        """The pages of a read, from its `since`, in order."""
        return self.stream._read_pages(self.context, read)  # noqa: SLF001 - its own reader

    def probe(self, since: str | None) -> tuple[str, datetime] | None:
        """The value and instant of the first record at or after `since`, if any."""
        record = first_record(self.stream, since)
        value = None if record is None else record.get(self.key)
        instant = self._instant(value)
        return None if instant is None else (t.cast("str", value), instant)

    def last_instant(self, page: Page) -> datetime | None:
        """The instant of a page's last record, if it has one that parses."""
        last = page.records[-1] if page.records else None
        return self._instant(last.get(self.key) if isinstance(last, dict) else None)

    @staticmethod
    def _instant(value: object) -> datetime | None:
        """An instant, or None for a value that is not one (refused when it is written)."""
        try:
            return parse_instant(value, what="")
        except BadBookmarkError:
            return None
