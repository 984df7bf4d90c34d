"""Cursor pagination on `paging.next.after`: only the documented last-page shapes end a list."""

from __future__ import annotations

import typing as t
import weakref
from urllib.parse import urlparse

import msgspec
from singer_sdk.pagination import BaseAPIPaginator
from typing_extensions import override

from tap_analytics.errors import BadPageError, json_type
from tap_analytics.redact import quoted

if t.TYPE_CHECKING:
    from collections.abc import Callable

    import requests

# Empty pages in a row, each with a next cursor, after which a list is taken to never end.
MAX_EMPTY_PAGES = 100
RECENT_PAGES = 100  # pages whose cursors and keys are kept: a loop within them is met at once
REPORT = "report it to the API provider"


def dig(document: object, dotted_path: str) -> object:
    """Follow a dotted path (`paging.next.after`) through nested objects; None if absent."""
    value = document
    for key in dotted_path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


class Repeats:
    """Tells whether a value came before in a sequence, in bounded memory.

    The last RECENT_PAGES values are kept, so a loop among them is met on its first repeat.
    A longer loop is met by Brent's cycle check: an anchor value, moved to the newest at
    every power of two, is met again within twice the loop's length (a list of 10,000,000
    pages must not keep 10,000,000 cursors).
    """

    def __init__(self) -> None:
        """Remember nothing yet."""
        self._recent: dict[t.Hashable, None] = {}  # in arrival order
        self._anchor: t.Hashable | None = None
        self._steps, self._power = 0, 1

    def seen(self, value: t.Hashable) -> bool:
        """Tell whether `value` came before (as far as this knows); remember it."""
        if value in self._recent or value == self._anchor:
            return True
        self._recent[value] = None
        if len(self._recent) > RECENT_PAGES:
            del self._recent[next(iter(self._recent))]
        self._steps += 1
        if self._steps == self._power:
            self._anchor, self._steps, self._power = value, 0, self._power * 2
        return False


class CursorPaginator(BaseAPIPaginator[str | None]):
    """Follows the next cursor; fails a list that would end wrongly or never end.

    A list ends only where the cursor's parent is missing or null (for `paging.next.after`:
    no `paging`, `"paging": {}` or `"next": null`). Any other page without a usable cursor
    fails, and so do a repeated cursor, a page of records already read (by the values of the
    key fields) and more than MAX_EMPTY_PAGES empty pages in a row.
    """

    def __init__(
        self,
        page_body: Callable[[requests.Response], object],
        cursor_path: str,
        page_records: Callable[[requests.Response], list[t.Any]],
        key_fields: tuple[str, ...],
    ) -> None:
        """Read cursors at a dotted path of the body; tell pages apart by their key fields."""
        super().__init__(None)
        self._page_body = page_body
        self._cursor_path = cursor_path
        self._page_records = page_records
        self._key_fields = key_fields
        self._cursors = Repeats()
        self._pages_read = Repeats()  # a hash of each page's key values
        self._empty_in_a_row = 0
        self._checked: weakref.ref[requests.Response] | None = None

    def _next_cursor(self, response: requests.Response) -> str | None:
        """Return the next cursor, or None on a last page; raise on any other shape."""
        keys = self._cursor_path.split(".")
        value = self._page_body(response)
        for depth, key in enumerate(keys, start=1):
            where = ".".join(keys[: depth - 1]) or "the page"
            if not isinstance(value, dict):
                self._fail(response, f"'{where}' is a JSON {json_type(value)}, not an object")
            value = value.get(key)
            if value is None and (depth < len(keys) or len(keys) == 1):
                return None  # a missing or null parent of the cursor: the last page
        if isinstance(value, str) and value:
            return value
        found = "missing" if value is None else f"a JSON {json_type(value)} ({quoted(repr(value))})"
        self._fail(response, f"the next cursor '{self._cursor_path}' is {found}")
        return None  # unreachable: _fail raises

    def _fail(self, response: requests.Response, problem: str, advice: str = "") -> t.NoReturn:
        """Refuse a page by its path, saying what is wrong and what to do."""
        path = urlparse(response.url).path
        advice = advice or (
            f"only a missing or null parent of '{self._cursor_path}' ends a list: {REPORT}, or "
            "set the resource's cursor_path"
        )
        msg = f"a page of GET {path} breaks the paging contract: {problem}; {advice}"
        raise BadPageError(msg)

    def check_progress(self, response: requests.Response) -> None:
        """Fail a list that goes round in circles: records read before, or empty pages.

        Called before a page is written (a repeated page is not written), else by get_next.
        """
        if self._checked is not None and self._checked() is response:
            return
        self._checked = weakref.ref(response)
        try:
            if self._next_cursor(response) is None:
                return  # the last page ends the list whatever it holds
        except BadPageError:
            return  # its records are good; advancing past it fails
        records = self._page_records(response)
        if not records:
            self._empty_in_a_row += 1
            if self._empty_in_a_row > MAX_EMPTY_PAGES:
                problem = f"more than {MAX_EMPTY_PAGES} empty pages in a row, each with a cursor"
                self._fail(response, problem, f"stopped instead of looping: {REPORT}")
            return
        self._empty_in_a_row = 0
        if not self._key_fields:
            return
        keys = [
            [record.get(name) for name in self._key_fields] if isinstance(record, dict) else None
            for record in records
        ]
        if self._pages_read.seen(hash(msgspec.json.encode(keys))):
            fields = ", ".join(self._key_fields)
            problem = f"the page repeats records already read (the same {fields}), in order"
            self._fail(response, problem, f"stopped instead of looping: {REPORT}")

    @override
    def has_more(self, response: requests.Response) -> bool:
        return self._next_cursor(response) is not None

    @override
    def get_next(self, response: requests.Response) -> str | None:
        cursor = self._next_cursor(response)
        if cursor is not None and self._cursors.seen(cursor):
            # The SDK only compares with the previous cursor; any repeat would loop forever.
            msg = (
                f"the API sent cursor {quoted(repr(cursor))} a second time (GET "
                f"{urlparse(response.url).path}); stopped instead of looping: {REPORT}"
            )
            raise BadPageError(msg)
        if cursor is not None:
            self.check_progress(response)
        return cursor
