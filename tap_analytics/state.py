"""Bookmarks: compared as instants, advanced only past records already written."""

from __future__ import annotations

import typing as t
from datetime import UTC, datetime


class BadBookmarkError(ValueError):
    """A bookmark or start value is not an RFC 3339 timestamp."""


def parse_instant(value: object, *, what: str) -> datetime:
    """Parse an RFC 3339 timestamp into an aware UTC datetime."""
    if not isinstance(value, str):
        msg = f"{what} must be an RFC 3339 timestamp string, not {value!r}"
        raise BadBookmarkError(msg)
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        msg = f"{what} is not an RFC 3339 timestamp: {value!r}"
        raise BadBookmarkError(msg) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


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


def starting_value(*candidates: tuple[str, object]) -> str | None:
    """Pick the latest of the bookmark, start_date and initial value, by instant."""
    best = Bookmark()
    for what, value in candidates:
        if value is not None:
            best.advance(value, what=what)
    return best.value
