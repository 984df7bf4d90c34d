"""What record values can do to a run: exact numbers, far-future and out-of-range instants."""

from __future__ import annotations

import logging
import typing as t
from decimal import Decimal

import pytest

from tap_analytics.evolution import Contract, SchemaContractError, SchemaGuard
from tap_analytics.inference import infer_schema
from tap_analytics.state import BadBookmarkError, parse_instant, parse_instants
from tap_analytics.tap import TapAnalytics
from tapkit import config_for, run_cli, run_tap

if t.TYPE_CHECKING:
    from tap_analytics.sandbox.server import SandboxServer
    from tapkit import Run

EXACT = "12345678901234567.89"  # more digits than a float holds: 1.2345678901234568e+16
FAR_FUTURE = "9999-12-31T23:59:59Z"
PAST_9999_IN_UTC = "9999-12-31T23:59:59-01:00"
LOGGER = logging.getLogger("test_values")


def override(sandbox: SandboxServer, record_id: str, name: str, value: str, **more: t.Any) -> None:
    """Serve one record of customers with `name` set to `value`."""
    spec = {"resource": "customers", "name": name, "value": value, "ids": [record_id], **more}
    sandbox.configure(field_overrides=[spec])


def record_lines(run: Run, record_id: str) -> list[bytes]:
    """The RECORD lines of a record, as written."""
    marker = f'"id":"{record_id}"'.encode()
    return [line for line in run.stdout.splitlines() if b'"RECORD"' in line and marker in line]


def last_line(run: Run) -> str:
    return run.stderr.strip().splitlines()[-1]


def deselecting(config: dict[str, t.Any], field: str) -> dict[str, t.Any]:
    """A catalog that deselects one field of customers: records take the SDK's own path."""
    catalog = TapAnalytics(config=dict(config)).catalog_dict
    for entry in catalog["streams"]:
        for metadata in entry["metadata"]:
            if entry["tap_stream_id"] == "customers" and metadata["breadcrumb"] == [
                "properties",
                field,
            ]:
                metadata["metadata"]["selected"] = False
    return catalog


# Point 4: numbers as the API sent them.


@pytest.mark.parametrize("path", ["verbatim", "sdk"])
def test_a_number_with_more_digits_than_a_float_is_written_as_the_api_sent_it(
    sandbox: SandboxServer, path: str
) -> None:
    records = sandbox.records("customers")
    chosen, exponent = records[57]["id"], records[58]["id"]
    sandbox.configure(
        field_overrides=[
            {"resource": "customers", "name": "lifetime_value", "value": value, "raw": True,
             "ids": [record_id]}
            for record_id, value in ((chosen, EXACT), (exponent, "1e5"))
        ]
    )  # fmt: skip
    config = config_for(sandbox.base_url, schema_evolution="freeze")
    catalog = deselecting(config, "email") if path == "sdk" else None
    run = run_tap(config, catalog=catalog)
    (line,) = record_lines(run, chosen)
    assert f'"lifetime_value":{EXACT},'.encode() in line
    (line,) = record_lines(run, exponent)
    assert b'"lifetime_value":1E+5,' in line  # the same number, spelled another way
    assert run.ids("customers") == [r["id"] for r in records]  # nothing lost, nothing twice
    assert run.bookmark("customers") == records[-1]["updated_at"]


def test_a_decimal_is_a_json_number_to_the_type_checks_and_the_inference() -> None:
    schema = {"properties": {"amount": {"type": ["number", "null"]}}}
    guard = SchemaGuard("orders", Contract("freeze", "freeze"), schema, LOGGER)
    assert guard.first_refused([{"amount": Decimal(EXACT)}]) == (1, None)
    assert infer_schema([{"amount": Decimal("0.1")}])["properties"]["amount"] == {
        "type": ["number", "null"]
    }


# Point 5: a replication value far ahead of the clock.


def test_a_record_from_the_far_future_is_written_and_warned_about_but_not_bookmarked(
    sandbox: SandboxServer,
) -> None:
    records = sandbox.records("customers")
    future = records[-1]["id"]  # the API sorts by updated_at: year 9999 comes last
    override(sandbox, future, "updated_at", FAR_FUTURE)
    config = config_for(sandbox.base_url)
    first = run_cli(config)
    assert first.returncode == 0, first.stderr
    assert first.ids("customers") == [r["id"] for r in records]
    assert first.bookmark("customers") == records[-2]["updated_at"]
    (warning,) = [line for line in first.stderr.splitlines() if future in line]
    assert "WARNING" in warning
    assert "stream 'customers'" in warning
    assert FAR_FUTURE in warning
    # Records changed after the run are read by the next one (the far-future one stays last).
    changed = [r["id"] for r in sandbox.update_records("customers", count=10)]
    sandbox.update_records("customers", ids=[future])
    second = run_cli(config, state=first.last_state)
    assert second.returncode == 0, second.stderr
    assert set(changed) <= set(second.ids("customers"))
    assert second.ids("customers")[-1] == future
    assert second.bookmark("customers") == sandbox.records("customers")[-2]["updated_at"]


# Point 6: an instant that lies past year 9999 once in UTC.


@pytest.mark.parametrize("value", [PAST_9999_IN_UTC, "0001-01-01T00:00:00+01:00"])
def test_an_instant_outside_the_years_1_to_9999_in_utc_is_refused_by_name(value: str) -> None:
    with pytest.raises(BadBookmarkError, match=r"^Setting 'start_date' .*years 1 to 9999 in UTC"):
        parse_instant(value, what="Setting 'start_date'")
    parsed, refusal = parse_instants(["2024-01-01T00:00:00Z", value], what="updated_at")
    assert len(parsed) == 1
    assert refusal is not None
    assert "updated_at" in str(refusal)


def incremental_customers(initial_value: str) -> dict[str, t.Any]:
    incremental = {"cursor_path": "updated_at", "start_param": "updated_since"}
    endpoint = {
        "path": "/v1/customers",
        "incremental": incremental | {"initial_value": initial_value},
    }
    return {"name": "customers", "endpoint": endpoint}


@pytest.mark.parametrize("where", ["start_date", "end_date", "bookmark", "initial_value"])
def test_an_instant_past_year_9999_in_utc_in_settings_or_state_is_one_line(
    sandbox: SandboxServer, where: str
) -> None:
    config = config_for(sandbox.base_url)
    state = None
    if where in {"start_date", "end_date"}:
        config[where] = PAST_9999_IN_UTC
    elif where == "bookmark":
        state = {"bookmarks": {"customers": {"replication_key_value": PAST_9999_IN_UTC}}}
    else:
        config["resources"] = [incremental_customers(PAST_9999_IN_UTC)]
    run = run_cli(config, state=state)
    assert run.returncode == 1
    assert "Traceback" not in run.stderr
    line = last_line(run)
    assert PAST_9999_IN_UTC in line
    assert "years 1 to 9999 in UTC" in line
    named = {
        "start_date": "Setting 'start_date'",
        "end_date": "Setting 'end_date'",
        "bookmark": "the bookmark of stream 'customers'",
        "initial_value": "resource 'customers'",
    }
    assert named[where] in line
    assert sandbox.request_log() == []  # not even a token


def test_a_record_past_year_9999_in_utc_is_refused_after_the_records_before_it(
    sandbox: SandboxServer,
) -> None:
    records = sandbox.records("customers")
    bad = 150  # on the second page of 100
    override(sandbox, records[bad]["id"], "updated_at", PAST_9999_IN_UTC)
    config = config_for(sandbox.base_url)
    first = run_cli(config)
    assert first.ids("customers") == [r["id"] for r in records[:bad]]  # each once
    assert len(first.records["sessions"]) == sandbox.counts()["sessions"]  # the others go on
    rerun = run_cli(config, state=first.last_state)  # fails the same way, losing nothing
    assert rerun.ids("customers") == []  # nothing new before it, nothing twice
    for run in (first, rerun):
        assert run.returncode == 1
        assert "Traceback" not in run.stderr
        line = last_line(run)
        assert "'customers'" in line
        assert PAST_9999_IN_UTC in line
        assert "years 1 to 9999 in UTC" in line
        assert run.bookmark("customers") == records[bad - 1]["updated_at"]


# Point 19: freeze checks the type of every record.


def test_freeze_refuses_a_changed_type_on_any_record_after_the_records_before_it(
    sandbox: SandboxServer,
) -> None:
    records = sandbox.records("customers")
    bad = 137  # neither the first of its page nor of its STATE part
    override(sandbox, records[bad]["id"], "total_events", "many")
    run = run_cli(config_for(sandbox.base_url, schema_evolution="freeze"))
    assert run.returncode == 1
    assert "Traceback" not in run.stderr
    line = last_line(run)
    for words in ("stream 'customers'", "'total_events'", records[bad]["id"], "'freeze'"):
        assert words in line
    assert run.ids("customers") == [r["id"] for r in records[:bad]]
    assert run.bookmark("customers") == records[bad - 1]["updated_at"]


def test_evolve_checks_the_first_record_of_each_page_only(
    sandbox: SandboxServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    records = sandbox.records("customers")
    sampled, unsampled = records[100]["id"], records[137]["id"]
    overrides = [
        {"resource": "customers", "name": "total_events", "value": "many", "ids": [sampled]},
        {"resource": "customers", "name": "is_active", "value": "yes", "ids": [unsampled]},
    ]
    sandbox.configure(field_overrides=overrides)
    run = run_tap(config_for(sandbox.base_url))
    assert run.ids("customers") == [r["id"] for r in records]
    logged = [r.getMessage() for r in caplog.records if "stream 'customers'" in r.getMessage()]
    assert any("'total_events'" in message and sampled in message for message in logged)
    assert not any("'is_active'" in message for message in logged)


def test_first_refused_names_the_first_record_with_a_disallowed_type() -> None:
    schema = {"properties": {"n": {"type": "integer"}, "s": {"type": ["string", "null"]}}}
    guard = SchemaGuard("orders", Contract("freeze", "freeze"), schema, LOGGER)
    good = [{"id": i, "n": i, "s": None} for i in range(5)]
    page: list[dict[str, t.Any]] = [*good, {"id": 5, "n": 5.5}, {"id": 6, "n": "x"}]
    index, refusal = guard.first_refused(page)
    assert index == len(good)
    assert isinstance(refusal, SchemaContractError)
    assert "field 'n' has a number value where the schema allows integer (id 5)" in str(refusal)
    assert guard.first_refused(good) == (len(good), None)
