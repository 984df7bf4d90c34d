"""GET /v1/{resource}: validation of the query, keyset pages and the page-level faults."""

from __future__ import annotations

import gzip
import json
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tap_analytics.sandbox.cursors import START, Cursor, InvalidCursorError, decode_cursor
from tap_analytics.sandbox.instants import parse_instant
from tap_analytics.sandbox.overrides import apply_overrides
from tap_analytics.sandbox.responses import Request, Response

if TYPE_CHECKING:
    from collections.abc import Sequence

    from tap_analytics.sandbox.faults import FaultRule
    from tap_analytics.sandbox.overrides import FieldOverride
    from tap_analytics.sandbox.store import ResourceStore

MAX_LIMIT = 100
INTEGER = re.compile(r"-?\d{1,12}")
# The three shapes of a last page, all allowed by the contract.
LAST_PAGE_PAGING = (None, b"{}", b'{"next":null}')


class InvalidParameterError(ValueError):
    """A query parameter the contract rejects with 400 invalid_parameter."""


@dataclass(frozen=True)
class PageQuery:
    """A validated list request: where to start, how many, and the position of the start."""

    limit: int
    start: int
    position: Cursor
    after: str | None


def parse_query(request: Request, store: ResourceStore) -> PageQuery:
    """Validate limit, after and updated_since; raise InvalidParameterError if one is bad."""
    limit_text = request.query.get("limit", str(MAX_LIMIT))
    if not INTEGER.fullmatch(limit_text) or not 1 <= int(limit_text) <= MAX_LIMIT:
        msg = f"limit must be an integer from 1 to {MAX_LIMIT}, not {limit_text!r}"
        raise InvalidParameterError(msg)
    position = Cursor(store.resource, START, "")
    start = 0
    after = request.query.get("after")
    if after is not None:
        try:
            position = decode_cursor(after, store.resource)
        except InvalidCursorError as error:
            raise InvalidParameterError(str(error)) from error
        start = store.position_after(position.updated, position.record_id)
    since_text = request.query.get("updated_since")
    if since_text is not None:
        try:
            since = parse_instant(since_text)
        except ValueError as error:
            msg = f"updated_since must be an RFC 3339 timestamp, not {since_text!r}"
            raise InvalidParameterError(msg) from error
        since_start = store.position_since(since)
        if since_start > start:
            start, position = since_start, Cursor(store.resource, since, "")
    return PageQuery(int(limit_text), start, position, after)


@dataclass
class Page:
    """The parts of a page body, before they are joined."""

    records: list[bytes]
    next_cursor: str | None
    has_data: bool = True
    data_is_list: bool = True
    paging: object = None  # served instead of the real paging, if given


def plan_page(
    store: ResourceStore,
    query: PageQuery,
    rule: FaultRule | None,
    overrides: Sequence[FieldOverride] = (),
) -> Page:
    """Choose the records and the next cursor of a page, spoiled by `rule` if given."""
    end = min(query.start + query.limit, len(store))
    records = store.bodies[query.start : end]
    if overrides:
        window = slice(query.start, end)
        records = apply_overrides(records, store.updated[window], store.ids[window], overrides)
    next_cursor = None
    if end < len(store):
        next_cursor = Cursor(store.resource, store.updated[end - 1], store.ids[end - 1]).encode()
    if query.position.repeat:  # a cursor handed out by a repeat_cursor fault keeps repeating
        next_cursor = query.after
    kind = rule.kind if rule else None
    if kind == "empty":  # same position, new encoding: nothing is lost and nothing repeats
        position = query.position
        resumed = Cursor(
            position.resource, position.updated, position.record_id, position.nonce + 1
        )
        return Page([], resumed.encode())
    if kind == "rewind":  # back to the start of this page, in a new encoding each time
        position = query.position
        next_cursor = Cursor(
            position.resource, position.updated, position.record_id, position.nonce + 1
        ).encode()
    if kind == "repeat_cursor":
        repeating = Cursor(
            store.resource, query.position.updated, query.position.record_id, 0, repeat=True
        )
        next_cursor = query.after or repeating.encode()
    elif kind == "unsorted":  # an API that breaks its order: the page's records newest first
        records = records[::-1]
    elif kind == "missing_field" and rule and records:
        first = json.loads(records[0])
        first.pop(rule.field, None)
        records = [json.dumps(first, separators=(",", ":")).encode(), *records[1:]]
    paging = rule.paging if rule and kind == "paging" else None
    return Page(
        records,
        next_cursor,
        has_data=kind != "no_data",
        data_is_list=kind != "data_not_list",
        paging=paging,
    )


def url_encode_base64(text: str) -> str:
    """URL-encode standard base64 (only +, / and = need it); faster than urllib's quote."""
    return text.replace("+", "%2B").replace("/", "%2F").replace("=", "%3D")


def next_link(request: Request, limit: int, cursor: str) -> str:
    """Return the URL of the next page."""
    link = f"http://{request.headers.get('host', 'localhost')}{request.path}"
    return link + f"?limit={limit}&after={url_encode_base64(cursor)}"


def filled(value: object, placeholders: dict[str, str]) -> object:
    """Return a JSON value with every string that is a placeholder replaced by its text."""
    if isinstance(value, str):
        return placeholders.get(value, value)
    if isinstance(value, list):
        return [filled(item, placeholders) for item in value]
    if isinstance(value, dict):
        return {key: filled(item, placeholders) for key, item in value.items()}
    return value


def render_page(page: Page, request: Request, limit: int, last_page_shape: int) -> bytes:
    """Join a page's pre-encoded records and paging into the response body."""
    parts = []
    if page.has_data:
        data = b"[" + b",".join(page.records) + b"]" if page.data_is_list else b"{}"
        parts.append(b'"data":' + data)
    if page.paging is not None:
        cursor = page.next_cursor or ""
        link = next_link(request, limit, cursor)
        paging = filled(page.paging, {"{after}": cursor, "{link}": link})
        parts.append(b'"paging":' + json.dumps(paging).encode())
    elif page.next_cursor is not None:
        link = next_link(request, limit, page.next_cursor)
        next_page = f'{{"after":"{page.next_cursor}","link":{json.dumps(link)}}}'
        parts.append(b'"paging":{"next":' + next_page.encode() + b"}")
    else:
        paging = LAST_PAGE_PAGING[last_page_shape % len(LAST_PAGE_PAGING)]
        if paging is not None:
            parts.append(b'"paging":' + paging)
    parts.append(b'"meta":{"count":' + str(len(page.records)).encode() + b"}")
    return b"{" + b",".join(parts) + b"}"


def list_response(  # noqa: PLR0913, PLR0917 (each is one input of a page)
    store: ResourceStore,
    request: Request,
    query: PageQuery,
    rule: FaultRule | None,
    last_page_shape: int,
    overrides: Sequence[FieldOverride] = (),
) -> tuple[Response, bool]:
    """Answer a validated list request; also return whether this was a last page."""
    page = plan_page(store, query, rule, overrides)
    body = render_page(page, request, query.limit, last_page_shape)
    action = "truncate" if rule and rule.kind == "truncated" else "send"
    headers = []
    if rule and rule.kind == "gzip":  # trailing spaces keep the inflated body valid JSON
        body = gzip.compress(body.ljust(rule.size), compresslevel=9, mtime=0)
        headers.append(("Content-Encoding", "gzip"))
    return Response(200, body, headers=headers, action=action), page.next_cursor is None
