"""Cursor pagination on `paging.next.after`; only a missing cursor ends a list."""

from __future__ import annotations

import typing as t

from singer_sdk.pagination import BaseAPIPaginator
from typing_extensions import override

from tap_analytics.errors import BadPageError

if t.TYPE_CHECKING:
    from collections.abc import Callable

    import requests


def dig(document: object, dotted_path: str) -> object:
    """Follow a dotted path (`paging.next.after`) through nested objects; None if absent."""
    value = document
    for key in dotted_path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


class CursorPaginator(BaseAPIPaginator[str | None]):
    """Follows the next cursor; empty pages with a cursor continue, a repeated cursor fails."""

    def __init__(self, page_body: Callable[[requests.Response], object], cursor_path: str) -> None:
        """Read cursors from the decoded page body at a dotted path."""
        super().__init__(None)
        self._page_body = page_body
        self._cursor_path = cursor_path
        self._seen: set[str] = set()

    def _next_cursor(self, response: requests.Response) -> str | None:
        """Return the next cursor, or None on the last page (all three shapes)."""
        cursor = dig(self._page_body(response), self._cursor_path)
        if cursor is None or cursor == "":
            return None
        if not isinstance(cursor, str):
            msg = f"next cursor at '{self._cursor_path}' is not a string: {cursor!r}"
            raise BadPageError(msg)
        return cursor

    @override
    def has_more(self, response: requests.Response) -> bool:
        return self._next_cursor(response) is not None

    @override
    def get_next(self, response: requests.Response) -> str | None:
        cursor = self._next_cursor(response)
        if cursor is not None and cursor in self._seen:
            # The SDK only compares with the previous cursor; any repeat would loop forever.
            msg = (
                f"the API sent cursor {cursor!r} a second time; stopped instead of looping: "
                "report it to the API provider"
            )
            raise BadPageError(msg)
        if cursor is not None:
            self._seen.add(cursor)
        return cursor
