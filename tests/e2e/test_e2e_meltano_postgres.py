"""`meltano run tap-analytics target-postgres`: first run, incremental run, full refresh."""

from __future__ import annotations

import typing as t
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from e2ekit import COUNTS, STREAMS, Meltano, Postgres

if t.TYPE_CHECKING:
    from tap_analytics.sandbox import SandboxServer

pytestmark = pytest.mark.e2e
RUN = ("run", "tap-analytics", "target-postgres")
UPDATES = {"customers": 5, "campaigns": 3}
STATE_ID = "ci:tap-analytics-to-target-postgres"


@dataclass
class Run:
    """What one pipeline run left behind."""

    started: datetime
    data_requests: list[dict[str, t.Any]]


def run_pipeline(meltano: Meltano, sandbox: SandboxServer, *flags: str) -> Run:
    """Run the pipeline once; return its start time and the data requests it made."""
    sandbox.clear_request_log()
    started = datetime.now(UTC).replace(tzinfo=None)
    meltano(*RUN[:1], *flags, *RUN[1:])
    requests = [r for r in sandbox.request_log() if str(r["path"]).startswith("/v1/")]
    return Run(started, requests)


def table_stats(postgres: Postgres, schema: str, table: str, since: datetime) -> tuple[int, ...]:
    """Rows, distinct ids, rows written since `since`, soft-deleted rows."""
    columns = "count(*), count(DISTINCT id), count(*) FILTER (WHERE _sdc_batched_at >= %s)"
    sql = f'SELECT {columns}, count(_sdc_deleted_at) FROM "{schema}"."{table}"'  # noqa: S608
    return postgres.query(sql, (since,))[0]


def written_ids(postgres: Postgres, schema: str, table: str, since: datetime) -> set[str]:
    """Ids of the rows written since `since`."""
    sql = f'SELECT id FROM "{schema}"."{table}" WHERE _sdc_batched_at >= %s'  # noqa: S608
    return {row[0] for row in postgres.query(sql, (since,))}


def latest_ids(records: list[dict[str, t.Any]]) -> set[str]:
    """Ids of the records that share the latest updated_at (re-read by `updated_since`)."""
    latest = max(parse(r["updated_at"]) for r in records)
    return {r["id"] for r in records if parse(r["updated_at"]) == latest}


def parse(value: str) -> datetime:
    """An RFC 3339 timestamp."""
    return datetime.fromisoformat(value)


def assert_one_row_per_record(postgres: Postgres, schema: str, since: datetime) -> None:
    """Every table holds exactly the sandbox's records, once each, none soft-deleted."""
    for table in STREAMS:
        rows, ids, _, deleted = table_stats(postgres, schema, table, since)
        assert (rows, ids, deleted) == (COUNTS[table], COUNTS[table], 0), table


@pytest.fixture(scope="module")
def first_run(pipeline: Meltano, e2e_sandbox: SandboxServer) -> Run:
    """The first run: no state yet."""
    assert pipeline("state", "get", STATE_ID).strip() in {"", "{}"}
    return run_pipeline(pipeline, e2e_sandbox)


@dataclass
class Incremental:
    """The second run, after records were changed in the sandbox."""

    run: Run
    before: dict[str, list[dict[str, t.Any]]]
    changed: dict[str, dict[str, dict[str, t.Any]]]


@pytest.fixture(scope="module")
def incremental_run(first_run: Run, pipeline: Meltano, e2e_sandbox: SandboxServer) -> Incremental:
    """After `first_run`: change some records in the sandbox, then run again with its state."""
    before = {name: e2e_sandbox.records(name) for name in STREAMS}
    changed = {}
    for name, count in UPDATES.items():
        e2e_sandbox.update_records(name, count=count)
        old = {r["id"]: r for r in before[name]}
        changed[name] = {r["id"]: r for r in e2e_sandbox.records(name) if old.get(r["id"]) != r}
    return Incremental(run_pipeline(pipeline, e2e_sandbox), before, changed)


@pytest.fixture(scope="module")
def full_refresh_run(
    incremental_run: Incremental, pipeline: Meltano, e2e_sandbox: SandboxServer
) -> Run:
    """After `incremental_run`: `meltano run --full-refresh` ignores the state."""
    return run_pipeline(pipeline, e2e_sandbox, "--full-refresh")


def test_first_run_loads_every_record_once(first_run: Run, postgres: Postgres, schema: str) -> None:
    assert_one_row_per_record(postgres, schema, first_run.started)
    for table in STREAMS:
        assert table_stats(postgres, schema, table, first_run.started)[2] == COUNTS[table]


def test_first_run_pages_through_every_resource(first_run: Run) -> None:
    paths = {r["path"] for r in first_run.data_requests}
    assert paths == {f"/v1/{name}" for name in STREAMS}
    assert len(first_run.data_requests) >= sum(-(-n // 40) for n in COUNTS.values())


@pytest.mark.usefixtures("first_run")
def test_id_is_the_primary_key(postgres: Postgres, schema: str) -> None:
    sql = (
        "SELECT kcu.column_name FROM information_schema.table_constraints tc"
        " JOIN information_schema.key_column_usage kcu"
        " ON kcu.constraint_name = tc.constraint_name AND kcu.table_schema = tc.table_schema"
        " WHERE tc.constraint_type = 'PRIMARY KEY' AND tc.table_schema = %s AND tc.table_name = %s"
    )
    for table in STREAMS:
        assert postgres.query(sql, (schema, table)) == [("id",)], table


@pytest.mark.usefixtures("first_run")
def test_state_is_kept_in_meltanos_system_database(pipeline: Meltano) -> None:
    state = pipeline("state", "get", STATE_ID)
    for name in STREAMS:
        assert f'"{name}"' in state


def test_incremental_run_sends_updated_since(incremental_run: Incremental) -> None:
    requests = incremental_run.run.data_requests
    assert {r["path"] for r in requests} == {f"/v1/{name}" for name in STREAMS}
    assert all("updated_since" in (r["query"] or {}) for r in requests), requests


def test_incremental_run_reads_only_changed_records(
    incremental_run: Incremental, postgres: Postgres, schema: str
) -> None:
    for table in STREAMS:
        written = written_ids(postgres, schema, table, incremental_run.run.started)
        changed = set(incremental_run.changed.get(table, {}))
        assert changed <= written, table
        assert written <= changed | latest_ids(incremental_run.before[table]), table
    assert sum(len(c) for c in incremental_run.changed.values()) == sum(UPDATES.values())


def test_incremental_run_merges_new_values_on_id(
    incremental_run: Incremental, postgres: Postgres, schema: str
) -> None:
    assert_one_row_per_record(postgres, schema, incremental_run.run.started)
    for table, records in incremental_run.changed.items():
        sql = f'SELECT id, name, updated_at FROM "{schema}"."{table}" WHERE id = ANY(%s)'  # noqa: S608
        loaded = {row[0]: row[1:] for row in postgres.query(sql, (list(records),))}
        for rid, record in records.items():
            name, updated_at = loaded[rid]
            assert name == record["name"], rid
            assert updated_at.replace(tzinfo=UTC) == parse(record["updated_at"]), rid


def test_full_refresh_reextracts_everything_once(
    full_refresh_run: Run, postgres: Postgres, schema: str
) -> None:
    assert_one_row_per_record(postgres, schema, full_refresh_run.started)
    for table in STREAMS:
        assert table_stats(postgres, schema, table, full_refresh_run.started)[2] == COUNTS[table]
