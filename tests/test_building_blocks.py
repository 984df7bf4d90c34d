"""Offline tests of the building blocks: retry waits, bookmarks, cursors, declarations."""

from __future__ import annotations

import itertools
import typing as t

import pytest
import requests

from tap_analytics import resources
from tap_analytics.errors import BadPageError
from tap_analytics.paging import RECENT_PAGES, CursorPaginator, Repeats, dig
from tap_analytics.retry import MAX_RETRY_AFTER, RetryPolicy, retry_after_seconds
from tap_analytics.state import BadBookmarkError, Bookmark, starting_value
from tapkit import SEED as SEED_CONFIG

TAP_DEFAULTS = {"page_size": 100, "max_retries": 3, "backoff_factor": 2}


class PageResponse(requests.Response):
    """A response with its decoded body at hand."""

    body: object = None


def response(
    status: int = 200, headers: dict[str, str] | None = None, body: object = None
) -> PageResponse:
    reply = PageResponse()
    reply.status_code = status
    reply.headers.update(headers or {})
    reply._content = b"{}"
    reply.body = body
    return reply


class FailureError(Exception):
    def __init__(self, reply: requests.Response) -> None:
        self.response = reply


def waits(policy: RetryPolicy, failures: t.Sequence[Exception]) -> list[float]:
    generator = policy.wait_generator()
    generator.send(None)
    return [generator.send(failure) for failure in failures]


def test_backoff_is_exponential_in_the_factor():
    failures = [FailureError(response(503))] * 4
    assert waits(RetryPolicy(backoff_factor=2), failures) == [2, 4, 8, 16]
    assert waits(RetryPolicy(backoff_factor=0.5), failures) == [0.5, 1, 2, 4]


def test_retry_after_sets_the_wait_and_is_capped():
    failures = [
        FailureError(response(429, {"Retry-After": "7"})),
        FailureError(response(503)),
        FailureError(response(429, {"Retry-After": "100000"})),
    ]
    assert waits(RetryPolicy(backoff_factor=1), failures) == [7, 2, MAX_RETRY_AFTER]


def test_retry_after_as_http_date_and_garbage():
    assert retry_after_seconds(response(429, {"Retry-After": "soon"})) is None
    past = "Wed, 21 Oct 2015 07:28:00 GMT"
    assert retry_after_seconds(response(429, {"Retry-After": past})) == 0


def test_jitter_never_shortens_the_wait():
    assert all(10 <= RetryPolicy.jitter(10) <= 11 for _ in range(100))


def test_bookmark_compares_instants_not_strings():
    bookmark = Bookmark("2024-05-01T10:00:00.250Z")
    bookmark.advance("2024-05-01T10:00:00Z")  # a string compare calls this later
    assert bookmark.value == "2024-05-01T10:00:00.250Z"
    bookmark.advance("2024-05-01T10:00:01Z")
    assert bookmark.value == "2024-05-01T10:00:01Z"
    bookmark.advance("2024-05-01T12:00:01+02:00")  # an earlier instant, later string
    assert bookmark.value == "2024-05-01T10:00:01Z"


@pytest.mark.parametrize("bad", ["yesterday", 12345, "2024-99-01T00:00:00Z", {"at": 1}])
def test_bad_bookmark_values_are_refused(bad):
    with pytest.raises(BadBookmarkError, match="bookmark"):
        starting_value(("bookmark", bad), ("start_date", "2024-01-01T00:00:00Z"))


def test_starting_value_is_the_latest_candidate():
    assert starting_value(("bookmark", None), ("start_date", None)) is None
    assert (
        starting_value(
            ("bookmark", "2024-03-01T00:00:00Z"), ("start_date", "2024-02-01T00:00:00.5Z")
        )
        == "2024-03-01T00:00:00Z"
    )


def paginator_over(bodies: t.Sequence[object]) -> tuple[CursorPaginator, list[PageResponse]]:
    replies = [response(body=body) for body in bodies]
    paginator = CursorPaginator(
        lambda reply: t.cast("PageResponse", reply).body, "paging.next.after", lambda _: [], ()
    )
    return paginator, replies


@pytest.mark.parametrize("last_page", [{}, {"paging": {}}, {"paging": {"next": None}}])
def test_each_last_page_shape_finishes(last_page):
    paginator, (first, last) = paginator_over([{"paging": {"next": {"after": "a+/="}}}, last_page])
    paginator.advance(first)
    assert paginator.current_value == "a+/="
    assert not paginator.finished
    paginator.advance(last)
    assert paginator.finished


def test_empty_page_with_cursor_continues():
    paginator, (reply,) = paginator_over([{"data": [], "paging": {"next": {"after": "x"}}}])
    paginator.advance(reply)
    assert not paginator.finished
    assert paginator.current_value == "x"


def test_any_repeated_cursor_is_an_error():
    bodies = [{"paging": {"next": {"after": c}}} for c in ("a", "b", "a")]
    paginator, replies = paginator_over(bodies)
    paginator.advance(replies[0])
    paginator.advance(replies[1])
    with pytest.raises(BadPageError, match="second time"):
        paginator.advance(replies[2])


@pytest.mark.parametrize(("lead", "loop"), [(0, 1), (5_000, 1), (10, 3), (30, 250), (3_000, 1_000)])
def test_a_loop_of_any_length_is_met_in_bounded_memory(lead: int, loop: int) -> None:
    repeats = Repeats()
    values = itertools.chain(range(-lead, 0), itertools.cycle(range(loop)))
    read = next(step for step, value in enumerate(values) if repeats.seen(value))
    if loop <= RECENT_PAGES:
        assert read == lead + loop  # at its first repeat
    else:  # Brent's check: within a few times the pages read when the loop closed
        assert lead + loop <= read <= 4 * (lead + loop)
    assert len(repeats._recent) <= RECENT_PAGES


def test_distinct_values_are_never_taken_for_repeats() -> None:
    repeats = Repeats()
    assert not any(repeats.seen(f"cursor-{n}") for n in range(100_000))


def test_dig():
    assert dig({"a": {"b": 1}}, "a.b") == 1
    assert dig({"a": None}, "a.b") is None
    assert dig([], "a") is None


SEED = SEED_CONFIG["resources"][0]


def test_builtins_are_declarations_too():
    declared = {r.name: r for r in resources.declare(None, None, TAP_DEFAULTS)}
    assert set(declared) == {"customers", "sessions", "events", "campaigns"}
    customers = declared["customers"]
    assert customers.path == "/v1/customers"
    assert customers.incremental is not None
    assert customers.incremental.start_param == "updated_since"
    assert customers.key_properties == ("id",)
    assert customers.page_size == 100
    assert customers.schema is not None


def test_user_declaration_gets_defaults_and_can_replace_a_builtin():
    user = [
        SEED,
        {"name": "customers", "endpoint": {"path": "/v2/customers"}, "write_disposition": "append"},
    ]
    declared = {r.name: r for r in resources.declare({"primary_key": "id"}, user, TAP_DEFAULTS)}
    assert declared["resource_name"].page_size == 100
    assert declared["resource_name"].retry.retry_statuses == {429, 500, 502, 503}
    assert declared["resource_name"].incremental is None
    assert declared["customers"].path == "/v2/customers"
    assert declared["customers"].key_properties == ()


@pytest.mark.parametrize(
    ("declaration", "expected"),
    [
        ({**SEED, "colour": "red"}, r"resources\[0\] \('resource_name'\).*colour"),
        ({**SEED, "endpoint": {**SEED["endpoint"], "paginator": {"type": "offset"}}}, "paginator"),
        ({**SEED, "endpoint": {"path": "v1/no-slash"}}, "endpoint.path"),
        ({**SEED, "primary_key": 5}, "primary_key"),
        ({"endpoint": {"path": "/v1/x"}}, "'name' is a required property"),
        (
            {
                **SEED,
                "write_disposition": "replace",
                "endpoint": {**SEED["endpoint"], "incremental": {"cursor_path": "updated_at"}},
            },
            "replace",
        ),
    ],
)
def test_bad_declarations_are_refused_naming_the_resource(declaration, expected):
    with pytest.raises(resources.DeclarationError, match=expected):
        resources.declare(None, [declaration], TAP_DEFAULTS)
