"""Schema evolution: new API fields and unexpected types under evolve, freeze and discard."""

from __future__ import annotations

import logging

import jsonschema
import pytest

from tap_analytics.tap import TapAnalytics
from tapkit import config_for, run_cli, run_tap, seed_config

FIELD = "loyalty_tier"
FORMATS = jsonschema.Draft7Validator.FORMAT_CHECKER


def carrying(run, stream: str, field: str = FIELD) -> list[dict]:
    return [r for r in run.records.get(stream, []) if field in r]


def schemas_of(run, stream: str) -> list[dict]:
    return [m["schema"] for m in run.messages if m["type"] == "SCHEMA" and m["stream"] == stream]


def assert_schema_precedes_field(run, stream: str, field: str = FIELD) -> dict:
    """Every record is valid against the latest SCHEMA before it; return the widened schema."""
    validator = None
    for message in run.messages:
        if message.get("stream") != stream:
            continue
        if message["type"] == "SCHEMA":
            validator = jsonschema.Draft7Validator(message["schema"], format_checker=FORMATS)
            current = message["schema"]
        elif message["type"] == "RECORD":
            assert validator is not None, "RECORD before any SCHEMA"
            if field in message["record"]:
                assert field in current["properties"], "a record carries the field first"
            validator.validate(message["record"])
    return schemas_of(run, stream)[-1]


def override_after(sandbox, resource: str, position: int, value, name: str = FIELD) -> list[str]:
    """Serve `name` = `value` from the record at `position` on; return the ids that carry it."""
    records = sandbox.records(resource)
    since = records[position]["updated_at"]
    sandbox.configure(
        field_overrides=[{"resource": resource, "name": name, "value": value, "since": since}]
    )
    return [r["id"] for r in sandbox.records(resource) if name in r and r[name] == value]


def first_carrying(sandbox, resource: str, name: str = FIELD) -> int:
    """Position of the first served record that carries a field."""
    return next(i for i, r in enumerate(sandbox.records(resource)) if name in r)


def messages(caplog, *words: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if all(w in r.getMessage() for w in words)]


def test_incremental_run_delivers_a_new_field_after_its_schema(sandbox, caplog):
    caplog.set_level(logging.INFO)
    first = run_tap(config_for(sandbox.base_url))
    assert not carrying(first, "customers")
    sandbox.configure(field_overrides=[{"resource": "customers", "name": FIELD, "value": "gold"}])
    updated = {r["id"] for r in sandbox.update_records("customers", count=5)}
    second = run_tap(config_for(sandbox.base_url), state=first.last_state)
    assert {r["id"] for r in carrying(second, "customers")} == updated
    assert all(r[FIELD] == "gold" for r in carrying(second, "customers"))
    before, *_, after = schemas_of(second, "customers")
    assert FIELD not in before["properties"]
    assert after["properties"][FIELD] == {"type": ["string", "null"]}
    assert_schema_precedes_field(second, "customers")
    assert messages(caplog, "'customers'", f"'{FIELD}'", "string or null", "added") != []
    assert len(messages(caplog, f"'{FIELD}'")) == 1  # once per run, not per record
    assert second.bookmark("customers") == sandbox.records("customers")[-1]["updated_at"]


@pytest.mark.parametrize(
    ("value", "schema", "words"),
    [
        (3, {"type": ["integer", "null"]}, "integer or null"),
        (2.5, {"type": ["number", "null"]}, "number or null"),
        (True, {"type": ["boolean", "null"]}, "boolean or null"),
        (
            "2024-05-01T10:00:00Z",
            {"type": ["string", "null"], "format": "date-time"},
            "string (date-time) or null",
        ),
        (
            {"level": 2},
            {"type": ["object", "null"], "properties": {"level": {"type": ["integer", "null"]}}},
            "object or null",
        ),
        (
            ["a"],
            {"type": ["array", "null"], "items": {"type": ["string", "null"]}},
            "array or null",
        ),
    ],
)
def test_the_new_fields_type_is_inferred_from_its_value(sandbox, caplog, value, schema, words):
    caplog.set_level(logging.INFO)
    ids = override_after(sandbox, "sessions", 100, value)
    run = run_tap(config_for(sandbox.base_url, page_size=30))
    assert [r["id"] for r in carrying(run, "sessions")] == ids
    assert assert_schema_precedes_field(run, "sessions")["properties"][FIELD] == schema
    (logged,) = messages(caplog, f"'{FIELD}'")
    assert words in logged
    assert "'sessions'" in logged


def test_a_new_field_is_selected_with_its_stream_through_a_catalog(sandbox):
    """Meltano passes a catalog: the field joins it, and a deselected field stays out."""
    config = config_for(sandbox.base_url)
    catalog = TapAnalytics(config=config).catalog_dict
    for entry in catalog["streams"]:
        for metadata in entry["metadata"]:
            if metadata["breadcrumb"] == ["properties", "email"]:
                metadata["metadata"]["selected"] = False
            elif metadata["breadcrumb"] == []:
                metadata["metadata"]["selected"] = True
    ids = override_after(sandbox, "customers", 50, "gold")
    run = run_tap(config, catalog=catalog)
    assert [r["id"] for r in carrying(run, "customers")] == ids
    assert all("email" not in r for r in run.records["customers"])
    widened = assert_schema_precedes_field(run, "customers")
    assert FIELD in widened["properties"]
    assert "email" not in widened["properties"]


def test_a_catalog_that_deselects_the_field_by_name_keeps_it_out(sandbox, caplog):
    caplog.set_level(logging.INFO)
    config = config_for(sandbox.base_url)
    catalog = TapAnalytics(config=config).catalog_dict
    for entry in catalog["streams"]:
        entry["metadata"][0]["metadata"]["selected"] = True
        if entry["tap_stream_id"] == "customers":
            crumb = {"breadcrumb": ["properties", FIELD], "metadata": {"selected": False}}
            entry["metadata"].append(crumb)
    ids = override_after(sandbox, "customers", 50, "gold")
    assert ids
    run = run_tap(config, catalog=catalog)
    assert not carrying(run, "customers")
    assert len(run.records["customers"]) == sandbox.counts()["customers"]
    assert all(FIELD not in schema["properties"] for schema in schemas_of(run, "customers"))
    assert len(messages(caplog, f"'{FIELD}'", "deselected")) == 1


def test_stream_maps_see_the_new_field(sandbox):
    config = config_for(
        sandbox.base_url,
        stream_maps={"customers": {"domain": "email.split('@')[-1] if email else None"}},
    )
    ids = override_after(sandbox, "customers", 50, "gold")
    run = run_tap(config)
    assert [r["id"] for r in carrying(run, "customers")] == ids
    widened = assert_schema_precedes_field(run, "customers")
    assert {"domain", FIELD} <= widened["properties"].keys()
    assert all("domain" in r for r in run.records["customers"])


def test_a_field_that_starts_null_is_added_with_its_first_value(sandbox):
    records = sandbox.records("events")
    overrides = [
        {"resource": "events", "name": FIELD, "value": None, "since": records[60]["updated_at"]},
        {"resource": "events", "name": FIELD, "value": 7, "since": records[150]["updated_at"]},
    ]
    sandbox.configure(field_overrides=overrides)
    served = sandbox.records("events")
    valued = [r["id"] for r in served if r.get(FIELD) == 7]
    assert any(r.get(FIELD, 0) is None for r in served)
    run = run_tap(config_for(sandbox.base_url))
    assert [r["id"] for r in carrying(run, "events")] == valued
    assert assert_schema_precedes_field(run, "events")["properties"][FIELD] == {
        "type": ["integer", "null"]
    }


def test_freeze_stops_the_stream_naming_the_field_and_the_others_go_on(sandbox):
    ids = override_after(sandbox, "customers", 120, "gold")
    position = first_carrying(sandbox, "customers")
    before = [r["id"] for r in sandbox.records("customers")][:position]
    run = run_cli(config_for(sandbox.base_url, schema_evolution="freeze", page_size=25))
    assert run.returncode == 1
    assert f"'{FIELD}'" in run.stderr
    assert "freeze" in run.stderr
    assert not carrying(run, "customers")
    assert run.ids("customers") == before  # everything before the first record with the field
    assert ids[0] not in run.ids("customers")
    for stream in ("sessions", "events", "campaigns"):
        assert len(run.records[stream]) == sandbox.counts()[stream]
    assert run.bookmark("customers") == sandbox.records("customers")[position - 1]["updated_at"]


def two_new_fields(sandbox, resource: str) -> None:
    """FIELD from the 50th record on, `referral_code` from the 150th: two combinations."""
    records = sandbox.records(resource)
    sandbox.configure(
        field_overrides=[
            {
                "resource": resource,
                "name": FIELD,
                "value": "gold",
                "since": records[50]["updated_at"],
            },
            {
                "resource": resource,
                "name": "referral_code",
                "value": "r-1",
                "since": records[150]["updated_at"],
            },
        ]
    )


@pytest.mark.parametrize(
    "maps",
    [
        None,
        # Stream maps send records through the SDK's conformance, which warns per combination.
        {"customers": {"domain": "email.split('@')[-1] if email else None"}},
    ],
)
def test_discard_drops_new_fields_and_says_so_once_per_field(sandbox, caplog, maps):
    caplog.set_level(logging.INFO)
    two_new_fields(sandbox, "customers")
    config = config_for(sandbox.base_url, schema_evolution="discard", stream_maps=maps or {})
    run = run_tap(config)
    assert len(run.records["customers"]) == sandbox.counts()["customers"]
    for field in (FIELD, "referral_code"):
        assert not carrying(run, "customers", field)
        assert all(field not in schema["properties"] for schema in schemas_of(run, "customers"))
        (logged,) = messages(caplog, f"'{field}'")
        assert "'customers'" in logged
        assert "dropped" in logged


@pytest.mark.parametrize("mode", ["evolve", "discard"])
def test_a_known_field_with_another_type_is_logged_once_and_passed_on(sandbox, caplog, mode):
    caplog.set_level(logging.INFO)
    ids = override_after(sandbox, "customers", 40, "many", name="total_events")
    run = run_tap(config_for(sandbox.base_url, schema_evolution=mode, page_size=20))
    by_id = {r["id"]: r for r in run.records["customers"]}
    assert all(by_id[i]["total_events"] == "many" for i in ids)  # not coerced
    (logged,) = messages(caplog, "'total_events'")
    assert "'customers'" in logged
    assert "string value" in logged
    assert "allows integer" in logged
    assert all("total_events" in s["properties"] for s in schemas_of(run, "customers"))


def test_freeze_stops_on_a_known_field_with_another_type(sandbox):
    override_after(sandbox, "customers", 40, "many", name="total_events")
    run = run_tap(
        config_for(sandbox.base_url, schema_evolution="freeze", page_size=20), expect_failure=True
    )
    message = str(run.error)
    assert "customers" in message
    assert "'total_events' has a string value where the schema allows integer" in message
    assert all(r["total_events"] != "many" for r in run.records["customers"])
    assert len(run.records["sessions"]) == sandbox.counts()["sessions"]


def seed_for(sandbox, **resource) -> dict:
    config = seed_config(sandbox.base_url)
    config["resources"][0].update(resource)
    return config


def test_the_inferred_schema_picks_up_a_field_first_seen_after_the_sample(sandbox_factory, caplog):
    caplog.set_level(logging.INFO)
    sandbox = sandbox_factory(counts={"resource": 400})
    ids = override_after(sandbox, "resource", 300, "gold")
    run = run_tap(seed_for(sandbox))
    assert "Inferred the schema of resource 'resource_name' from 200" in caplog.text
    assert len(run.records["resource_name"]) == 400
    assert [r["id"] for r in carrying(run, "resource_name")] == ids
    first, *_ = schemas_of(run, "resource_name")
    assert FIELD not in first["properties"]
    widened = assert_schema_precedes_field(run, "resource_name")
    assert widened["properties"][FIELD] == {"type": ["string", "null"]}


@pytest.mark.parametrize(
    ("contract", "tap_mode", "resource_gets_it", "fails"),
    [
        ("freeze", "evolve", False, {"resource_name"}),
        ("discard_value", "freeze", False, {"customers"}),
        ({"columns": "evolve"}, "freeze", True, {"customers"}),
        ({"columns": "discard_value", "data_type": "freeze"}, "evolve", False, set()),
    ],
)
def test_schema_contract_of_a_declared_resource_beats_the_tap_setting(
    sandbox_factory, contract, tap_mode, resource_gets_it, fails
):
    # The declared resource infers its schema from 200 records: the field comes after them.
    sandbox = sandbox_factory(counts={"resource": 400})
    first = {"resource": 300, "customers": 30}
    overrides = [
        {
            "resource": n,
            "name": FIELD,
            "value": "gold",
            "since": sandbox.records(n)[i]["updated_at"],
        }
        for n, i in first.items()
    ]
    sandbox.configure(field_overrides=overrides)
    config = {**seed_for(sandbox, schema_contract=contract), "schema_evolution": tap_mode}
    run = run_tap(config, expect_failure=bool(fails))
    assert bool(carrying(run, "resource_name")) is resource_gets_it
    assert bool(carrying(run, "customers")) is (tap_mode == "evolve")
    for stream, resource in (("resource_name", "resource"), ("customers", "customers")):
        assert (f"'{stream}'" in str(run.error)) is (stream in fails)
        served = sandbox.counts()[resource]
        expected = first_carrying(sandbox, resource) if stream in fails else served
        assert len(run.records[stream]) == expected


def test_schema_contract_data_type_freeze_stops_on_another_type(sandbox_factory):
    sandbox = sandbox_factory(counts={"resource": 400})
    override_after(sandbox, "resource", 300, "many", name="total_events")
    contract = {"columns": "discard_value", "data_type": "freeze"}
    run = run_tap(seed_for(sandbox, schema_contract=contract), expect_failure=True)
    assert "'resource_name': field 'total_events' has a string value" in str(run.error)
    assert len(run.records["customers"]) == sandbox.counts()["customers"]


@pytest.mark.parametrize("contract", ["discard_row", "evolving", {"tables": "freeze"}, 3])
def test_a_bad_schema_contract_is_refused_by_name(sandbox, contract):
    run = run_cli(seed_for(sandbox, schema_contract=contract))
    assert run.returncode == 1
    assert "schema_contract" in run.stderr
    assert "resource_name" in run.stderr
    assert not [r for r in sandbox.request_log() if r["path"].startswith("/v1/")]


def test_a_bad_schema_evolution_is_refused_by_name(sandbox):
    run = run_cli(config_for(sandbox.base_url, schema_evolution="grow"))
    assert run.returncode == 1
    assert "'schema_evolution'" in run.stderr
    assert not sandbox.request_log()
