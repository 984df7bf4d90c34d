"""What the tap writes: valid records, SCHEMA before RECORD, the SDK's standard tap tests."""

from __future__ import annotations

import typing as t

import jsonschema
import pytest
from singer_sdk.testing import get_tap_test_class

from tap_analytics.sandbox import SandboxServer
from tap_analytics.tap import TapAnalytics
from tapkit import api_ids, catalog_selecting, config_for, run_tap

if t.TYPE_CHECKING:
    from collections.abc import Iterator

FORMATS = jsonschema.Draft7Validator.FORMAT_CHECKER


def test_every_record_is_valid_against_its_schema_message(sandbox):
    run = run_tap(config_for(sandbox.base_url))
    schemas = {}
    for message in run.messages:
        if message["type"] == "SCHEMA":
            schemas[message["stream"]] = jsonschema.Draft7Validator(
                message["schema"], format_checker=FORMATS
            )
            assert message["key_properties"] == ["id"]
        elif message["type"] == "RECORD":
            schemas[message["stream"]].validate(message["record"])
    assert set(run.records) == {"customers", "sessions", "events", "campaigns"}
    for stream in run.records:
        assert run.ids(stream) == api_ids(sandbox.base_url, stream), stream


def test_selected_properties_only(sandbox):
    tap = TapAnalytics(config=config_for(sandbox.base_url))
    catalog = tap.catalog_dict
    for entry in catalog["streams"]:
        for metadata in entry["metadata"]:
            if metadata["breadcrumb"] == ["properties", "email"]:
                metadata["metadata"]["selected"] = False
    run = run_tap(config_for(sandbox.base_url), catalog=catalog)
    assert all("email" not in r for r in run.records["customers"])
    assert len(run.records["customers"]) == sandbox.counts()["customers"]


def test_stream_maps_and_flattening(sandbox):
    config = config_for(
        sandbox.base_url,
        stream_maps={
            "customers": {"email": "__NULL__", "domain": "email.split('@')[-1] if email else None"}
        },
        flattening_enabled=True,
        flattening_max_depth=1,
    )
    run = run_tap(config)
    customer = run.records["customers"][0]
    assert "email" not in customer
    assert "domain" in customer
    session = run.records["sessions"][0]
    assert "utm__source" in session
    assert run.bookmark("customers") is not None


# The SDK builds its standard test class from a config at import time but only syncs when its
# tests run: the config is refilled when the module's sandbox starts (wholesale, because
# validation writes derived settings such as token_url into the dict it is given).
STANDARD_CONFIG = config_for("http://127.0.0.1:9")
TestTapAnalyticsStandard = get_tap_test_class(tap_class=TapAnalytics, config=STANDARD_CONFIG)


@pytest.fixture(scope="module", autouse=True)
def standard_sandbox() -> Iterator[None]:
    """The sandbox the standard tests sync from, stopped with the module."""
    counts = {"customers": 120, "sessions": 90, "events": 150, "campaigns": 30}
    with SandboxServer(counts=counts) as server:
        STANDARD_CONFIG.clear()
        STANDARD_CONFIG.update(config_for(server.base_url))
        yield


def test_only_selected_streams_are_requested_and_written(sandbox):
    config = config_for(sandbox.base_url)
    run = run_tap(config, catalog=catalog_selecting(config, {"sessions", "campaigns"}))
    assert set(run.records) == {"sessions", "campaigns"}
    assert {m["stream"] for m in run.messages if m["type"] == "SCHEMA"} == {"sessions", "campaigns"}
    paths = {r["path"] for r in sandbox.request_log() if r["path"].startswith("/v1/")}
    assert paths == {"/v1/sessions", "/v1/campaigns"}
    assert set(run.last_state["bookmarks"]) == {"sessions", "campaigns"}
