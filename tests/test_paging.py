"""Cursor paging: every last-page shape, empty pages, encoded cursors, repeated cursors."""

from __future__ import annotations

import typing as t

import pytest

from tapkit import api_ids, config_for, run_tap, wiretap

if t.TYPE_CHECKING:
    import requests

STREAMS = ("customers", "sessions", "events", "campaigns")
LAST_PAGE_SHAPES = {"paging absent", "paging {}", 'paging {"next": null}'}


def test_every_record_exactly_once_in_api_order(sandbox):
    run = run_tap(config_for(sandbox.base_url, page_size=17))
    for stream in STREAMS:
        assert run.ids(stream) == [r["id"] for r in sandbox.records(stream)], stream
        assert run.ids(stream) == api_ids(sandbox.base_url, stream), stream


def test_limit_and_cursor_go_back_url_encoded(sandbox):
    run_tap(config_for(sandbox.base_url, page_size=9))
    requests = [r for r in sandbox.request_log() if r["path"] == "/v1/customers"]
    assert all(r["query"]["limit"] == "9" for r in requests)
    cursors = [r["query"]["after"] for r in requests if "after" in r["query"]]
    assert len(cursors) == len(requests) - 1
    assert any(set(c) & set("+/=") for c in cursors), "the sandbox's cursors carry + / ="
    assert all(r["status"] == 200 for r in requests)


def last_page_shape(body: dict[str, t.Any]) -> str | None:
    """Name the paging of a page without a next cursor; None for a page that has one."""
    if "paging" not in body:
        return "paging absent"
    if body["paging"] == {}:
        return "paging {}"
    if body["paging"] == {"next": None}:
        return 'paging {"next": null}'
    assert body["paging"]["next"]["after"], body["paging"]
    return None


def test_all_three_last_page_shapes_end_the_list(sandbox):
    served: list[str] = []

    def note_last_page(response: requests.Response, _sent_at: float) -> None:
        if response.request.path_url.startswith("/v1/"):
            shape = last_page_shape(response.json())
            if shape is not None:
                served.append(shape)

    with wiretap(note_last_page):
        runs = [run_tap(config_for(sandbox.base_url, page_size=size)) for size in (7, 11, 13)]
    assert set(served) == LAST_PAGE_SHAPES, "the tap was served every last-page shape"
    assert len(served) == len(runs) * len(STREAMS), "one last page per stream and run"
    for stream in STREAMS:
        expected = api_ids(sandbox.base_url, stream)
        for run in runs:
            assert run.ids(stream) == expected, stream


@pytest.mark.parametrize("empties", [1, 5])
def test_empty_pages_with_a_cursor_do_not_end_the_list(sandbox, empties):
    sandbox.add_fault({"kind": "empty", "path": "/v1/sessions", "skip": 1, "times": empties})
    run = run_tap(config_for(sandbox.base_url, page_size=25))
    assert run.ids("sessions") == [r["id"] for r in sandbox.records("sessions")]


def test_repeated_cursor_fails_the_stream_instead_of_looping(sandbox):
    sandbox.add_fault({"kind": "repeat_cursor", "path": "/v1/campaigns", "skip": 1, "times": -1})
    run = run_tap(config_for(sandbox.base_url, page_size=10), expect_failure=True)
    assert "campaigns" in str(run.error)
    assert "cursor" in str(run.error)
    campaign_requests = [r for r in sandbox.request_log() if r["path"] == "/v1/campaigns"]
    assert len(campaign_requests) < 10
    for stream in ("customers", "sessions", "events"):
        assert len(run.records[stream]) == sandbox.counts()[stream], "other streams go on"
