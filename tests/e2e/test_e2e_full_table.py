"""FULL_TABLE chosen with Meltano's `metadata` extra: a full read into PostgreSQL, then resume."""

from __future__ import annotations

import json
import typing as t
from datetime import UTC, datetime

import pytest
from e2ekit import COUNTS, Meltano, Postgres

if t.TYPE_CHECKING:
    from tap_analytics.sandbox import SandboxServer

pytestmark = pytest.mark.e2e
FULL_TABLE = {
    "TAP_ANALYTICS__METADATA": json.dumps({"customers": {"replication-method": "FULL_TABLE"}})
}


def run_pipeline(
    meltano: Meltano, sandbox: SandboxServer, extra: dict[str, str] | None = None
) -> tuple[datetime, list[dict[str, t.Any]]]:
    """Run the pipeline once; return its start and its requests for customers."""
    sandbox.clear_request_log()
    started = datetime.now(UTC).replace(tzinfo=None)
    meltano("run", "tap-analytics", "target-postgres", extra=extra)
    return started, [r for r in sandbox.request_log() if r["path"] == "/v1/customers"]


@pytest.mark.full  # three Meltano runs (about 35 s); the CLI cases are in tests/test_full_table.py
def test_full_table_reads_every_customer_despite_the_bookmark_then_resumes_after_it(
    pipeline: Meltano, e2e_sandbox: SandboxServer, postgres: Postgres, schema: str
) -> None:
    run_pipeline(pipeline, e2e_sandbox)  # a first run leaves a bookmark
    e2e_sandbox.update_records("customers", count=5)
    started, requests = run_pipeline(pipeline, e2e_sandbox, FULL_TABLE)
    assert requests
    assert all("updated_since" not in (r["query"] or {}) for r in requests), requests
    stats = postgres.table_stats(schema, "customers", started)
    total = COUNTS["customers"]
    # Every row written again, in one version: none left behind, none soft-deleted.
    assert (stats.rows, stats.ids, stats.written, stats.deleted) == (total, total, total, 0)
    # The bookmark where the full read left it: the next run starts at the last record.
    latest = max(
        e2e_sandbox.records("customers"), key=lambda r: datetime.fromisoformat(r["updated_at"])
    )
    _, resumed = run_pipeline(pipeline, e2e_sandbox)
    assert {r["query"].get("updated_since") for r in resumed} == {latest["updated_at"]}
