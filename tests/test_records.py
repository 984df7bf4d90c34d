"""What the tap writes: valid records, SCHEMA before RECORD, the SDK's standard tap tests."""

from __future__ import annotations

import jsonschema
from singer_sdk.testing import get_tap_test_class

from tap_analytics.sandbox import SandboxServer
from tap_analytics.tap import TapAnalytics
from tapkit import catalog_selecting, config_for, run_tap

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
    assert sum(len(v) for v in run.records.values()) == sum(
        n for k, n in sandbox.counts().items() if k != "resource"
    )


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


# The SDK builds its standard test class from a config at import time, so this sandbox starts
# at collection and serves the whole session (its threads are daemons).
_standard = SandboxServer(counts={"customers": 120, "sessions": 90, "events": 150, "campaigns": 30})
_standard.start()

TestTapAnalyticsStandard = get_tap_test_class(
    tap_class=TapAnalytics,
    config=config_for(_standard.base_url),
)


def test_only_selected_streams_are_requested_and_written(sandbox):
    config = config_for(sandbox.base_url)
    run = run_tap(config, catalog=catalog_selecting(config, {"sessions", "campaigns"}))
    assert set(run.records) == {"sessions", "campaigns"}
    assert {m["stream"] for m in run.messages if m["type"] == "SCHEMA"} == {"sessions", "campaigns"}
    paths = {r["path"] for r in sandbox.request_log() if r["path"].startswith("/v1/")}
    assert paths == {"/v1/sessions", "/v1/campaigns"}
    assert set(run.last_state["bookmarks"]) == {"sessions", "campaigns"}
