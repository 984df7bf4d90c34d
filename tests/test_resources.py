"""Declarative resources: the seed's rest_api configuration runs as the tap's own config."""

from __future__ import annotations

import logging
import typing as t
from datetime import datetime

import pytest

from tapkit import SEED, api_ids, config_for, run_cli, run_tap, seed_config


def with_resource(sandbox, **changes) -> dict[str, t.Any]:
    """The seed with its one resource changed (endpoint keys merge into the endpoint)."""
    config = seed_config(sandbox.base_url)
    resource = config["resources"][0]
    resource["endpoint"].update(changes.pop("endpoint", {}))
    resource.update(changes)
    return config


def instant(value: str) -> datetime:
    return datetime.fromisoformat(value)


def resource_requests(sandbox) -> list[dict[str, t.Any]]:
    return [r for r in sandbox.request_log() if r["path"] == "/v1/resource"]


def schema_message(run, stream: str) -> dict[str, t.Any]:
    return next(m for m in run.messages if m["type"] == "SCHEMA" and m["stream"] == stream)


def test_the_seed_configuration_verbatim_syncs_every_record(sandbox, caplog):
    caplog.set_level(logging.INFO)
    run = run_tap(seed_config(sandbox.base_url))
    assert run.ids("resource_name") == [r["id"] for r in sandbox.records("resource")]
    assert run.ids("resource_name") == api_ids(sandbox.base_url, "resource")
    assert set(run.records) == {"resource_name", "customers", "sessions", "events", "campaigns"}
    schema = schema_message(run, "resource_name")
    assert schema["key_properties"] == ["id"]
    assert schema["schema"]["properties"]["updated_at"]["format"] == "date-time"
    assert schema["schema"]["properties"]["email"]["type"] == ["string", "null"]
    assert "Inferred the schema of resource 'resource_name'" in caplog.text
    # And the same configuration through the command line, discovery included.
    cli = run_cli(seed_config(sandbox.base_url))
    assert cli.returncode == 0, cli.stderr[-2000:]
    assert len(cli.records["resource_name"]) == sandbox.counts()["resource"]


def test_discovery_offline_names_resources_that_need_a_schema():
    config = config_for("http://127.0.0.1:9", resources=SEED["resources"], max_retries=0)
    run = run_cli(config, "--discover")
    assert run.returncode != 0
    last = run.stderr.strip().splitlines()[-1]
    assert "'resource_name'" in last
    assert "schema" in last


def test_declared_schema_is_used_without_sampling(sandbox):
    schema = {
        "type": "object",
        "properties": {"id": {"type": "string"}, "name": {"type": ["string", "null"]}},
    }
    run = run_tap(with_resource(sandbox, schema=schema, schema_contract="discard_value"))
    assert schema_message(run, "resource_name")["schema"] == schema
    assert set(run.records["resource_name"][0]) == {"id", "name"}


def test_params_limit_and_cursor_param(sandbox):
    run = run_tap(
        with_resource(
            sandbox,
            endpoint={
                "params": {"expand": "all", "flag": True},
                "paginator": {"type": "cursor", "limit": 7},
            },
        )
    )
    requests = resource_requests(sandbox)
    assert all(r["query"]["expand"] == "all" for r in requests)
    assert all(r["query"]["limit"] == "7" for r in requests)
    assert len(run.records["resource_name"]) == sandbox.counts()["resource"]


def test_cursor_param_is_what_goes_back(sandbox):
    # The sandbox only knows `after`: a renamed cursor parameter makes it repeat page one,
    # which is not written again.
    config = with_resource(
        sandbox,
        endpoint={"paginator": {"type": "cursor", "cursor_param": "from"}},
        schema=SCHEMA,  # sampling would meet the repeated page first
    )
    run = run_tap(config, expect_failure=True)
    assert "the page repeats records already read" in str(run.error)
    assert len(run.records["resource_name"]) == len(set(run.ids("resource_name")))
    assert "from" in resource_requests(sandbox)[1]["query"]


API_DEFAULT_LIMIT = 100  # the contract's page size when a request sends no `limit`
SCHEMA = {
    "type": "object",
    "properties": {"id": {"type": "string"}, "updated_at": {"type": "string"}},
}


def test_single_page(sandbox):
    run = run_tap(with_resource(sandbox, endpoint={"paginator": "single_page"}, schema=SCHEMA))
    assert len(resource_requests(sandbox)) == 1
    assert len(run.records["resource_name"]) == API_DEFAULT_LIMIT
    assert "limit" not in resource_requests(sandbox)[0]["query"]


@pytest.mark.parametrize("selector", ["data", "$.data", "$.data[*]"])
def test_data_selector_dotted_or_jsonpath(sandbox, selector):
    run = run_tap(with_resource(sandbox, endpoint={"data_selector": selector}))
    assert len(run.records["resource_name"]) == sandbox.counts()["resource"]


def test_data_selector_pointing_elsewhere_fails_with_a_hint(sandbox):
    config = with_resource(
        sandbox,
        endpoint={"data_selector": "meta"},
        schema={"type": "object", "properties": {"id": {"type": "string"}}},
    )
    config["resources"][0]["endpoint"]["error_handler"]["max_retries"] = 0
    run = run_tap(config, expect_failure=True)
    assert "data_selector" in str(run.error)


def test_status_left_out_of_retry_on_status_codes_is_not_retried(sandbox):
    sandbox.add_fault({"kind": "status", "status": 500, "path": "/v1/resource", "times": 1})
    config = with_resource(
        sandbox, endpoint={"error_handler": {"retry_on_status_codes": [429, 503]}}
    )
    config["resources"][0]["schema"] = {"type": "object", "properties": {"id": {"type": "string"}}}
    run = run_tap(config, expect_failure=True)
    assert "500" in str(run.error)
    assert len(resource_requests(sandbox)) == 1
    sandbox.clear_request_log()
    sandbox.add_fault({"kind": "status", "status": 500, "path": "/v1/resource", "times": 1})
    config = with_resource(
        sandbox,
        endpoint={"error_handler": {"retry_on_status_codes": [500], "backoff_factor": 0.01}},
    )
    config["resources"][0]["schema"] = {"type": "object", "properties": {"id": {"type": "string"}}}
    run = run_tap(config)
    assert len(run.records["resource_name"]) == sandbox.counts()["resource"]


def test_max_retries_per_resource(sandbox):
    sandbox.add_fault({"kind": "status", "status": 503, "path": "/v1/resource", "times": -1})
    config = with_resource(
        sandbox, endpoint={"error_handler": {"max_retries": 1, "backoff_factor": 0.01}}
    )
    config["resources"][0]["schema"] = {"type": "object", "properties": {"id": {"type": "string"}}}
    run_tap(config, expect_failure=True)
    assert len(resource_requests(sandbox)) == 2


@pytest.mark.parametrize(
    ("changes", "keys"),
    [
        ({"primary_key": "id"}, ["id"]),
        ({"primary_key": ["id", "created_at"]}, ["id", "created_at"]),
        ({"write_disposition": "append"}, []),
    ],
)
def test_primary_key_and_write_disposition(sandbox, changes, keys):
    run = run_tap(with_resource(sandbox, **changes))
    assert schema_message(run, "resource_name")["key_properties"] == keys


def test_replace_emits_activate_version(sandbox):
    run = run_tap(with_resource(sandbox, write_disposition="replace"))
    stream = [m for m in run.messages if m.get("stream") == "resource_name"]
    versions = [m["version"] for m in stream if m["type"] == "ACTIVATE_VERSION"]
    assert len(versions) == 2
    assert stream[-1]["type"] == "ACTIVATE_VERSION", "the last one lets the target drop old rows"
    assert {m["version"] for m in stream if m["type"] == "RECORD"} == {versions[0]}


def test_incremental_with_initial_value(sandbox):
    records = sandbox.records("resource")
    start = records[60]["updated_at"]
    incremental = {
        "cursor_path": "updated_at",
        "start_param": "updated_since",
        "initial_value": start,
    }
    run = run_tap(with_resource(sandbox, endpoint={"incremental": incremental}, schema=SCHEMA))
    assert {r["query"].get("updated_since") for r in resource_requests(sandbox)} == {start}
    expected = [r["id"] for r in records if instant(r["updated_at"]) >= instant(start)]
    assert run.ids("resource_name") == expected
    assert run.bookmark("resource_name") == records[-1]["updated_at"]
    message = schema_message(run, "resource_name")
    assert message["bookmark_properties"] == ["updated_at"]


def test_a_declaration_replaces_the_builtin_of_its_name(sandbox):
    config = seed_config(sandbox.base_url)
    config["resources"] = [
        {"name": "customers", "endpoint": {"path": "/v1/resource"}, "schema": "customers.json"}
    ]
    run = run_tap(config)
    assert run.ids("customers") == [r["id"] for r in sandbox.records("resource")]


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"colour": "red"}, ("resources[0] ('resource_name')", "colour")),
        (
            {"endpoint": {"path": "/v1/resource", "paginator": {"type": "offset"}}},
            ("resource_name", "paginator"),
        ),
        ({"primary_key": 7}, ("resource_name", "primary_key")),
        (
            {"endpoint": {"path": "/v1/resource", "error_handler": {"max_retries": "three"}}},
            ("resource_name", "max_retries"),
        ),
    ],
)
def test_bad_declaration_is_refused_by_name_before_any_request(sandbox, change, words):
    config = seed_config(sandbox.base_url)
    config["resources"][0].update(change)
    run = run_cli(config)
    assert run.returncode == 1
    last = run.stderr.strip().splitlines()[-1]
    for word in words:
        assert word in last
    assert sandbox.request_log() == []
