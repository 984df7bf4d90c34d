"""The sync engine of a stream: a page at a time, checkpoints with STATE, the verbatim path."""

from __future__ import annotations

import itertools
import typing as t
from dataclasses import dataclass
from datetime import UTC, datetime

import requests
from singer_sdk import RESTStream, metrics
from singer_sdk.helpers._catalog import get_selected_schema
from singer_sdk.helpers._state import write_starting_replication_value
from singer_sdk.mapper import SameRecordTransform
from typing_extensions import override

from tap_analytics.client import ResourceStream
from tap_analytics.errors import BadPageError, InvalidStateError, SyncInterruptedError
from tap_analytics.evolution import Contract, SchemaGuard, widened
from tap_analytics.output import encode_lines
from tap_analytics.pages import WaitClock, fetched_pages
from tap_analytics.progress import RecordCounter
from tap_analytics.state import (
    CLOCK_TOLERANCE,
    BadBookmarkError,
    Bookmark,
    ahead_of_clock,
    parse_instant,
    parse_instants,
    starting_value,
)

if t.TYPE_CHECKING:
    from collections.abc import Generator, Iterable, Iterator

    from singer_sdk.helpers.types import Context

STATE_EVERY = 1000  # records between STATE messages: the most a killed run re-reads


class AnalyticsStream(ResourceStream):
    """A resource synced a page at a time, with a bookmark that only moves past written data."""

    _extracted_at: datetime | None = None
    _bookmark = Bookmark()  # in the last STATE written
    _chunk = Bookmark()  # of the records encoded so far
    _verbatim = True  # records go out as they came: nothing selects, maps or flattens them
    _records: RecordCounter | None = None
    _end: datetime | None = None  # exclusive upper bound of the replication key
    wait_clock = WaitClock()  # the run gives each sync its own; read by the pacing

    @override
    def request_records(self, context: Context | None) -> Iterable[dict[str, t.Any]]:
        for records in self._fetched_pages(context):
            yield from records

    def _fetched_pages(self, context: Context | None) -> Iterator[list[dict[str, t.Any]]]:
        """The API's pages of records, each with its extraction time set."""
        for page in fetched_pages(self, context, self.wait_clock):
            self._extracted_at = page.extracted_at
            yield page.records

    @override
    def get_replication_key_signpost(self, context: Context | None = None) -> None:
        return None  # records are sorted: the last one written is the bookmark

    @override
    def get_record_counter(
        self, *, endpoint: str | None = None, log_interval: float = metrics.DEFAULT_LOG_INTERVAL
    ) -> RecordCounter:
        self._records = RecordCounter(self.name, endpoint=endpoint, log_interval=log_interval)
        return self._records

    @property
    def records_synced(self) -> int:
        """Records synced so far by this stream's sync (read by the progress lines)."""
        return 0 if self._records is None else self._records.value

    @property
    def bookmark(self) -> str | None:
        """The replication value of the last STATE written (read by the progress lines)."""
        return self._bookmark.value

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

    def _page_lines(self, records: list[dict[str, t.Any]]) -> bytes:
        """Encode records' RECORD messages as the SDK writes them, verbatim, in one call."""
        name, extracted_at, version = self.name, self._extracted_at, self._stream_version
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
        records: list[dict[str, t.Any]],
        keyed: tuple[list[t.Any], list[datetime]] | None,
        guard: SchemaGuard,
        lines: list[bytes] | None,
    ) -> list[dict[str, t.Any]]:
        """Encode records under the schema contract, moving the bookmark; return them as written."""
        if self._verbatim and all(map(guard.names.issuperset, records)):
            if lines is not None:
                lines.append(self._page_lines(records))
            if keyed:
                self._chunk.advance_to_latest(*keyed)
            return records
        written = []
        for index, record in enumerate(records):  # one at a time: maps, or new fields
            screened = record
            if not record.keys() <= guard.names:
                screened, grew = self._meet_unknown_fields(record, guard, lines)
                if grew:
                    self._verbatim = self._writes_records_verbatim()
            if lines is not None:
                lines.extend(self._encode(screened))
            if keyed:  # record by record: a refusal further on keeps these written
                values, instants = keyed
                self._chunk.advance_to_latest(
                    values[index : index + 1], instants[index : index + 1]
                )
            written.append(screened)
        return written

    def _encode(self, record: dict[str, t.Any]) -> Iterable[bytes]:
        """Encode a record's RECORD message line(s); its fields are all in the schema."""
        if self._verbatim:
            return (self._page_lines([record]),)
        writer = self.run.writer
        return [writer.format_message(m) for m in self._generate_record_messages(record)]

    def check_state(self) -> str | None:
        """Pick where this run starts; say what is wrong with the stored bookmark, if anything."""
        self._bookmark, self._end = Bookmark(), None
        if self.resource.incremental is None:
            return None
        bookmark = self.stream_state.get("replication_key_value")
        try:
            self._start_value = starting_value(
                (f"the bookmark of stream '{self.name}'", bookmark),
                ("start_date", self.config.get("start_date")),
                (
                    f"the initial_value of stream '{self.name}'",
                    self.resource.incremental.initial_value,
                ),
            )
        except BadBookmarkError as exc:
            return f"{exc}; fix or remove it in the state to resume"
        self._bookmark = Bookmark(bookmark if isinstance(bookmark, str) else None)
        ends = (self.config.get("end_date"), self.resource.incremental.end_value)
        # Both were validated with the settings; the earlier one closes the window.
        self._end = min((parse_instant(end, what="end") for end in ends if end), default=None)
        return None

    def _checkpoint(self, lines: list[bytes] | None, *, final: bool = False) -> None:
        """Write lines, then move the bookmark past them and write STATE."""

        def advance() -> dict[str, t.Any]:
            state = self.stream_state
            if self.replication_key and self._chunk.value is not None:
                self._bookmark.advance(self._chunk.value)
                state["replication_key"] = self.replication_key
                state["replication_key_value"] = self._bookmark.value
            if final:
                self._finalize_state(state)  # drops the starting value, as the SDK's loop does
            return dict(self.tap_state)

        self.run.writer.checkpoint(lines or (), advance)
        if lines:
            lines.clear()

    def _pages(self, context: Context | None) -> Iterator[list[t.Any]]:
        """The pages to sync, each with its extraction time set; a --test run's first few."""
        limit = self.ABORT_AT_RECORD_COUNT  # a clean stop, not the SDK's abort exception
        for page in self._all_pages(context):
            if limit is None:
                yield page
                continue
            yield page[:limit]
            limit -= min(limit, len(page))
            if not limit:
                return

    def _all_pages(self, context: Context | None) -> Iterator[list[t.Any]]:
        """Every page of records, each with its extraction time set."""
        if type(self).get_records is RESTStream.get_records and (
            type(self).request_records is AnalyticsStream.request_records
        ):
            yield from self._fetched_pages(context)
            return
        records = iter(self.get_records(context))  # a subclass's records, in slices
        while records_page := list(itertools.islice(records, self.resource.page_size or 100)):
            self._extracted_at = datetime.now(UTC)
            yield records_page

    def _begin_sync(self) -> None:
        """Set up the session and the starting point of this stream's sync."""
        session = self.requests_session
        # Resolve proxies once: requests would otherwise look them up on every request.
        session.proxies = requests.utils.get_environ_proxies(self.url_base)
        session.trust_env = False
        if problem := self.check_state():
            raise InvalidStateError(problem)
        if self.replication_key:
            write_starting_replication_value(self.stream_state, self._start_value)
        self._verbatim = self._writes_records_verbatim()
        self._chunk = Bookmark()

    def _checked(
        self, page: list[t.Any], required: tuple[str, ...], guard: SchemaGuard
    ) -> CheckedPage:
        """The records of a page before the first refused one or the window's end."""
        records, values, refusal = self._accepted(page, required)  # the key is required last
        typed, type_refusal = guard.first_refused(records)
        if type_refusal is not None:
            records, values, refusal = records[:typed], values[:typed], type_refusal
        key = self.replication_key
        if not key:
            return CheckedPage(records, None, refusal)
        instants, bad = parse_instants(values, what=key)
        if bad is not None:
            at = len(instants)
            refusal = BadPageError(
                f"stream '{self.name}': record {records[at].get('id')!r} refused: {bad}; the tap "
                "cannot bookmark it: report it to the API provider"
            )
            records, values = records[:at], values[:at]
        ended = False
        if self._end is not None:
            end = self._end
            cut = next((i for i, instant in enumerate(instants) if instant >= end), None)
            if cut is not None:  # sorted by the key: the rest belongs to the next window
                records, values, instants = records[:cut], values[:cut], instants[:cut]
                ended, refusal = True, None
        self._warn_ahead_of_clock(records, values, instants)
        return CheckedPage(records, (values, instants), refusal, window_ended=ended)

    def _warn_ahead_of_clock(
        self, records: list[dict[str, t.Any]], values: list[t.Any], instants: list[datetime]
    ) -> None:
        """Name each record to be written whose replication value will not move the bookmark."""
        for index in ahead_of_clock(instants):
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
        self._begin_sync()
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
            try:
                for page in self._pages(context):
                    if stop.is_set():
                        raise SyncInterruptedError(0)
                    if hooked:
                        page = self._post_processed(page, context)  # noqa: PLW2901
                    checked = self._checked(page, required, guard)
                    while checked.records:  # in parts that end where STATE is due
                        part, keyed = checked.take(STATE_EVERY - since_state)
                        part = self._write(part, keyed, guard, lines)
                        counter.increment(len(part))
                        since_state += len(part)
                        if since_state >= STATE_EVERY:
                            self._checkpoint(lines)
                            since_state = 0
                        yield from part
                    if checked.refusal is not None:
                        raise checked.refusal
                    if checked.window_ended:
                        break
                complete = self.ABORT_AT_RECORD_COUNT is None  # --test stops short, by plan
            finally:
                self._checkpoint(lines, final=complete)
        if complete and self.emit_activate_version_messages and self._stream_version is not None:
            self._write_activate_version_message(self._stream_version)


@dataclass
class CheckedPage:
    """A page's records that passed the checks, with their replication values and instants."""

    records: list[dict[str, t.Any]]
    keyed: tuple[list[t.Any], list[datetime]] | None  # values and instants, record by record
    refusal: Exception | None  # why the page stops short: the records after it are not synced
    window_ended: bool = False  # the rest of the page, and the stream, is for a later window

    def take(
        self, count: int
    ) -> tuple[list[dict[str, t.Any]], tuple[list[t.Any], list[datetime]] | None]:
        """Remove and return the first `count` records, with their values and instants."""
        part, self.records = self.records[:count], self.records[count:]
        if self.keyed is None:
            return part, None
        values, instants = self.keyed
        self.keyed = values[count:], instants[count:]
        return part, (values[:count], instants[:count])
