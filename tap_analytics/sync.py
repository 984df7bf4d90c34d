"""The sync engine of a stream: prefetched pages, checkpoints with STATE, the verbatim path."""

from __future__ import annotations

import itertools
import typing as t

import requests
from singer_sdk import RESTStream, metrics
from singer_sdk.helpers._catalog import get_selected_schema
from singer_sdk.helpers._state import write_starting_replication_value
from singer_sdk.mapper import SameRecordTransform
from typing_extensions import override

from tap_analytics.client import ResourceStream
from tap_analytics.errors import BadPageError, InvalidStateError, SyncInterruptedError
from tap_analytics.evolution import Contract, SchemaGuard, widened
from tap_analytics.output import encode_line
from tap_analytics.prefetch import prefetched_pages
from tap_analytics.progress import RecordCounter
from tap_analytics.state import BadBookmarkError, Bookmark, parse_instant, starting_value

if t.TYPE_CHECKING:
    from collections.abc import Generator, Iterable
    from datetime import datetime

    from singer_sdk.helpers.types import Context

STATE_EVERY = 1000  # records between STATE messages: the most a killed run re-reads


class AnalyticsStream(ResourceStream):
    """A resource synced record by record, with a bookmark that only moves past written data."""

    _extracted_at: datetime | None = None
    _bookmark = Bookmark()
    _records: RecordCounter | None = None
    _end: datetime | None = None  # exclusive upper bound of the replication key
    _page_start: object = None  # the first record of the latest page: its types are checked

    @override
    def request_records(self, context: Context | None) -> Iterable[dict[str, t.Any]]:
        for page in prefetched_pages(self, context):
            self._extracted_at = page.extracted_at
            self._page_start = page.records[0] if page.records else None
            yield from page.records  # a page is good even when its cursor is not

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

    def _screened(
        self,
        raw: object,
        record: dict[str, t.Any],
        guard: SchemaGuard,
        lines: list[bytes] | None,
        *,
        verbatim: bool,
    ) -> tuple[dict[str, t.Any], bool]:
        """Apply the schema contract to a record; return it and whether it can go verbatim."""
        if raw is self._page_start:  # a sample: checking every value costs too much
            guard.check_types(record)
        if record.keys() <= guard.names:
            return record, verbatim
        record, grew = self._meet_unknown_fields(record, guard, lines)
        return record, self._writes_records_verbatim() if grew else verbatim

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

    def _check_record(self, record: object, required: tuple[str, ...]) -> dict[str, t.Any]:
        """Refuse a record without its key or replication value, naming what is missing."""
        if not isinstance(record, dict):
            msg = f"stream '{self.name}': a record is not an object: {record!r:.80}"
            raise BadPageError(msg)
        for field in required:
            if record.get(field) is None:
                msg = (
                    f"stream '{self.name}': a record has no '{field}' "
                    f"(id {record.get('id')!r}), so the tap cannot key or bookmark it; report it "
                    "to the API provider"
                )
                raise BadPageError(msg)
        return record

    def _prepared(
        self,
        raw: dict[str, t.Any],
        required: tuple[str, ...],
        context: Context | None,
        *,
        hooked: bool,
    ) -> dict[str, t.Any] | None:
        """Hand a record to post_process when a subclass overrides it, then check it."""
        # As in the SDK's loop, post_process sees the raw record: it may drop invalid ones.
        record = self.post_process(raw, context) if hooked else raw
        return None if record is None else self._check_record(record, required)

    def _encode(self, record: dict[str, t.Any], *, verbatim: bool) -> Iterable[bytes]:
        """Encode a record's RECORD message line(s); its fields are all in the schema."""
        if verbatim:
            message: dict[str, t.Any] = {
                "type": "RECORD",
                "stream": self.name,
                "record": record,
                "time_extracted": self._extracted_at,
            }
            if self._stream_version is not None:
                message["version"] = self._stream_version
            return (encode_line(message),)
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

    def _checkpoint(self, lines: list[bytes], written: Bookmark, *, final: bool = False) -> None:
        """Write lines, then move the bookmark past them and write STATE."""

        def advance() -> dict[str, t.Any]:
            state = self.stream_state
            if self.replication_key and written.value is not None:
                self._bookmark.advance(written.value)
                state["replication_key"] = self.replication_key
                state["replication_key_value"] = self._bookmark.value
            if final:
                self._finalize_state(state)  # drops the starting value, as the SDK's loop does
            return dict(self.tap_state)

        self.run.writer.checkpoint(lines, advance)
        lines.clear()

    def _records_to_sync(self, context: Context | None) -> Iterable[dict[str, t.Any]]:
        """Every record, or the first few of a --test run (ABORT_AT_RECORD_COUNT)."""
        records = self.get_records(context)
        limit = self.ABORT_AT_RECORD_COUNT
        # A clean stop: the SDK's dry-run abort is an exception its Stream.sync logs as an error.
        return records if limit is None else itertools.islice(records, limit)

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

    @override
    def _sync_records(
        self,
        context: Context | None = None,
        *,
        write_messages: bool = True,
    ) -> Generator[dict[str, t.Any], None, None]:
        # Replaces the SDK's per-record loop (pinned to singer-sdk 0.54): bookmarks by
        # instant, STATE every STATE_EVERY records, one locked writer, a verbatim fast path.
        # No partitions: no resource of the API is listed per parent or per partition.
        self._begin_sync()
        # post_process is the SDK's public per-record hook; skipped when nobody overrides it.
        hooked = type(self).post_process is not RESTStream.post_process
        verbatim = self._writes_records_verbatim()
        stop = self.run.stop
        writes = write_messages and self.selected
        key = self.replication_key
        required = (*self.resource.primary_key, *((key,) if key else ()))
        guard, end, key_name = self._schema_guard(), self._end, key or ""
        lines: list[bytes] = []
        chunk, last_value = Bookmark(), None
        complete = False
        with self.get_record_counter() as counter, self.get_sync_timer():
            try:
                for count, raw in enumerate(self._records_to_sync(context), start=1):
                    if stop.is_set():
                        raise SyncInterruptedError(0)
                    record = self._prepared(raw, required, context, hooked=hooked)
                    if record is None:
                        continue
                    value = record[key] if key else None
                    fresh = value != last_value  # ties need no second parse
                    if fresh and end and parse_instant(value, what=key_name) >= end:
                        break  # sorted by the key: the rest belongs to the next window
                    if raw is self._page_start or not record.keys() <= guard.names:
                        record, verbatim = self._screened(
                            raw, record, guard, lines if writes else None, verbatim=verbatim
                        )
                    if fresh:  # after the checks: the bookmark never passes a record not written
                        last_value = value
                        chunk.advance(value, what=key_name)
                    if writes:
                        lines.extend(self._encode(record, verbatim=verbatim))
                    counter.increment()
                    if count % STATE_EVERY == 0:
                        self._checkpoint(lines, chunk)
                    yield record
                complete = self.ABORT_AT_RECORD_COUNT is None  # --test stops short, by plan
            finally:
                self._checkpoint(lines, chunk, final=complete)
        if complete and self.emit_activate_version_messages and self._stream_version is not None:
            self._write_activate_version_message(self._stream_version)
