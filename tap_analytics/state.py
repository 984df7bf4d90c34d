"""Bookmarks: compared as instants, advanced only past records already written."""

from __future__ import annotations

import bisect
import json
import re
import typing as t
from datetime import UTC, datetime, timedelta

from tap_analytics.errors import InvalidStateError, json_type

# RFC 3339 section 5.6 date-time: T or t, an offset (Z, z or +hh:mm) always; ASCII digits only.
_DATE, _OFFSET = r"[0-9]{4}-[0-9]{2}-[0-9]{2}", r"[+-][0-9]{2}:[0-9]{2}"
_TIME = r"[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]+)?"
_DATE_TIME = re.compile(f"{_DATE}[Tt]{_TIME}(?:[Zz]|{_OFFSET})")
EXAMPLE = "2024-01-01T00:00:00Z"
# A page of such values, one a line, as servers spell them (upper-case T and Z): one match.
_UPPER = f"{_DATE}T{_TIME}(?:Z|{_OFFSET})"
_PAGE_OF_DATE_TIMES = re.compile(f"{_UPPER}(?:\n{_UPPER})*")
# Only a date-time on the first or last day of the calendar can leave it once in UTC.
_EDGE_DAYS = ("0001-01-01", "9999-12-31")
# How far ahead of this machine's clock a replication value may lie and still move a bookmark:
# the clock skew allowed between the API's servers and this machine.
CLOCK_TOLERANCE = timedelta(minutes=5)


class BadBookmarkError(ValueError):
    """A bookmark or start value is not an RFC 3339 timestamp."""


def parse_instant(value: object, *, what: str) -> datetime:
    """Parse an RFC 3339 date-time with an offset into an aware UTC datetime, or refuse it."""
    parsed = _date_time(value)
    if parsed is not None:
        try:
            return parsed.astimezone(UTC)
        except OverflowError:  # 9999-12-31T23:59:59-01:00 is in year 10000 in UTC
            msg = (
                f"{what} lies outside the years 1 to 9999 in UTC: {value!r} (an instant from "
                "0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z)"
            )
            raise BadBookmarkError(msg) from None
    if not isinstance(value, str):
        msg = f"{what} must be an RFC 3339 timestamp string such as {EXAMPLE}, not {value!r}"
        raise BadBookmarkError(msg)
    msg = (
        f"{what} is not an RFC 3339 timestamp: {value!r} (a date-time with an offset, "
        f"such as {EXAMPLE})"
    )
    raise BadBookmarkError(msg)


def _date_time(value: object) -> datetime | None:
    """The date-time a value spells in RFC 3339, or None."""
    if not isinstance(value, str) or _DATE_TIME.fullmatch(value) is None:
        return None
    try:
        return datetime.fromisoformat(canonical(value))
    except ValueError:  # an impossible one, such as month 13
        return None


def parse_instants(
    values: list[t.Any], *, what: str
) -> tuple[list[datetime], BadBookmarkError | None]:
    """Parse a page's values in order; on a bad one, those before it and the error."""
    try:
        text = "\n".join(values)
        edge = any(day in text for day in _EDGE_DAYS)  # may leave the calendar in UTC
        if not edge and _PAGE_OF_DATE_TIMES.fullmatch(text) is not None:
            return list(map(datetime.fromisoformat, values)), None  # aware: they compare
    except (TypeError, ValueError):  # not all strings, or an impossible date: find which
        pass
    parsed = []
    for value in values:
        try:
            parsed.append(parse_instant(value, what=what))
        except BadBookmarkError as exc:
            return parsed, exc
    return parsed, None


def canonical(value: str) -> str:
    """Spell an RFC 3339 date-time with upper-case T and Z, as every server accepts it."""
    return value.upper()


class Bookmark:
    """The latest replication value written; `...:00Z` < `...:00.25Z` as instants."""

    __slots__ = ("instant", "value")

    def __init__(self, value: str | None = None, *, what: str = "bookmark") -> None:
        """Start from a stored value, or empty."""
        self.value = value
        self.instant = None if value is None else parse_instant(value, what=what)

    def advance(self, value: object, *, what: str = "replication key") -> None:
        """Move forward to `value` if it is a later instant; never move back."""
        instant = parse_instant(value, what=what)
        if self.instant is None or instant > self.instant:
            self.value, self.instant = t.cast("str", value), instant


def clock_limit() -> datetime:
    """The latest instant a bookmark may hold now: this machine's clock plus CLOCK_TOLERANCE."""
    return datetime.now(UTC) + CLOCK_TOLERANCE


def within_clock(instants: list[datetime]) -> int:
    """How many of ascending instants lie within clock_limit(): the rest never bookmark."""
    if not instants or instants[-1] <= (limit := clock_limit()):
        return len(instants)
    return bisect.bisect_right(instants, limit)


def starting_value(*candidates: tuple[str, object]) -> str | None:
    """Pick the latest of the bookmark, start_date and initial value, by instant."""
    best = Bookmark()
    for what, value in candidates:
        if value is not None:
            best.advance(value, what=what)
    return None if best.value is None else canonical(best.value)


def later_than_now(value: object) -> bool:
    """Tell whether a valid timestamp lies in the future (an invalid one is refused elsewhere)."""
    try:
        return parse_instant(value, what="") > datetime.now(UTC)
    except BadBookmarkError:
        return False


def read_state_file(text: str, name: str) -> tuple[dict[str, t.Any], str | None]:
    """Return the state a --state file holds and a note on how it was read; refuse bad ones."""
    if not text.strip():
        return {}, f"{name} is empty: no state, so every stream starts from start_date"
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        msg = (
            f"{name} is not valid JSON ({exc}). Fix it, or remove --state to start from start_date"
        )
        raise InvalidStateError(msg) from None
    note = None
    if isinstance(document, dict) and document.get("type") == "STATE" and "value" in document:
        note = f"{name} is a Singer STATE message: resuming from the state it carries"
        document, name = document["value"], f"the STATE message in {name}"
    if document == {}:
        return {}, f"{name} holds no bookmarks: every stream starts from start_date"
    check_state(document, name)
    return document, note


def _shape_problem(document: object) -> str:
    """Say how a decoded state differs from {"bookmarks": {...}}."""
    if not isinstance(document, dict):
        return f"it is a JSON {json_type(document)}"
    if "bookmarks" not in document:
        return "it has " + ", ".join(repr(key) for key in document) + " but no 'bookmarks'"
    return f"its 'bookmarks' is a JSON {json_type(document['bookmarks'])}"


def check_state(document: object, name: str) -> None:
    """Refuse a state that is not {"bookmarks": {stream: {...}}} with valid timestamps."""
    bookmarks = document.get("bookmarks") if isinstance(document, dict) else None
    if not isinstance(bookmarks, dict):
        msg = (
            f"{name} must be a JSON object with a 'bookmarks' object, or a Singer STATE "
            f"message; {_shape_problem(document)}"
        )
        raise InvalidStateError(msg)
    for stream, entry in bookmarks.items():
        if not isinstance(entry, dict):
            msg = (
                f"the bookmark of stream '{stream}' in {name} is a JSON {json_type(entry)}, "
                f'not an object such as {{"replication_key_value": "{EXAMPLE}"}}'
            )
            raise InvalidStateError(msg)
        if entry.get("replication_key_value") is not None:
            what = f"the bookmark of stream '{stream}' in {name}"
            try:
                parse_instant(entry["replication_key_value"], what=what)
            except BadBookmarkError as exc:
                msg = f"{exc}; fix or remove it in the state to resume"
                raise InvalidStateError(msg) from None
