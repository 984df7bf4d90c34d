"""A new API field reaches PostgreSQL through `meltano run tap-analytics target-postgres`."""

from __future__ import annotations

import typing as t
from datetime import UTC, datetime

import pytest
from e2ekit import COUNTS, Meltano, Postgres

if t.TYPE_CHECKING:
    from tap_analytics.sandbox import SandboxServer

pytestmark = pytest.mark.e2e
RUN = ("run", "tap-analytics", "target-postgres")
FIELD = "loyalty_tier"
UPDATED = 5


def columns(postgres: Postgres, schema: str, table: str) -> dict[str, str]:
    """Column names and types of a table."""
    sql = (
        "SELECT column_name, data_type FROM information_schema.columns"
        " WHERE table_schema = %s AND table_name = %s"
    )
    return dict(postgres.query(sql, (schema, table)))


def test_a_new_field_becomes_a_column_filled_for_new_records_only(
    pipeline: Meltano, e2e_sandbox: SandboxServer, postgres: Postgres, schema: str
) -> None:
    pipeline(*RUN)
    assert FIELD not in columns(postgres, schema, "customers")
    first = {r["id"]: r for r in e2e_sandbox.records("customers")}
    e2e_sandbox.configure(
        field_overrides=[{"resource": "customers", "name": FIELD, "value": "gold"}]
    )
    updated = {r["id"] for r in e2e_sandbox.update_records("customers", count=UPDATED)}
    second_started = datetime.now(UTC).replace(tzinfo=None)
    pipeline(*RUN)

    found = columns(postgres, schema, "customers")
    sql = (
        f'SELECT id, {FIELD}, name, _sdc_batched_at >= %s FROM "{schema}"."customers"'  # noqa: S608
        " ORDER BY id"
    )
    rows = postgres.query(sql, (second_started,))
    print(f"\ncolumn {FIELD}: {found.get(FIELD)}; column name: {found['name']}")
    filled = [row for row in rows if row[1] is not None]
    print(f"rows: {len(rows)}, with {FIELD}: {filled}")
    assert found[FIELD] == found["name"]  # a string column, like the other string fields
    assert len(rows) == COUNTS["customers"]
    assert {row[0] for row in filled} == updated
    assert all(row[1] == "gold" for row in filled)
    for record_id, value, name, _ in rows:
        if record_id not in updated:  # older rows keep their values, and no value in the column
            assert (value, name) == (None, first[record_id]["name"]), record_id
    # Rewritten: the changed records, and those re-read at the bookmark's instant (inclusive).
    latest = max(datetime.fromisoformat(r["updated_at"]) for r in first.values())
    at_bookmark = {i for i, r in first.items() if datetime.fromisoformat(r["updated_at"]) == latest}
    rewritten = {row[0] for row in rows if row[3]}
    assert updated <= rewritten <= updated | at_bookmark
