"""A resource declared in meltano.yml (rest_api form) runs through `meltano run`."""

from __future__ import annotations

import typing as t

import pytest
from e2ekit import CLIENT_SECRET, Meltano, Postgres, base_env

from tap_analytics.sandbox import SandboxServer

if t.TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = pytest.mark.e2e
COUNTS = {"customers": 20, "sessions": 20, "events": 20, "campaigns": 20, "resource": 260}


@pytest.fixture(scope="module")
def declared_sandbox() -> Iterator[SandboxServer]:
    """A sandbox whose /v1/resource holds a few pages of records."""
    with SandboxServer(counts=COUNTS) as server:
        yield server


def test_resource_declared_in_meltano_yml_is_loaded(
    meltano_installed: Meltano,
    declared_sandbox: SandboxServer,
    postgres: Postgres,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    schema = "declared_resources"
    postgres.query(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    tmp = tmp_path_factory.mktemp("declared")
    env = base_env(tmp)
    env.update(
        {
            "MELTANO_ENVIRONMENT": "declared",
            # Only the address and the secret come from outside meltano.yml.
            "TAP_ANALYTICS_BASE_URL": declared_sandbox.base_url,
            "TAP_ANALYTICS_CLIENT_SECRET": CLIENT_SECRET,
            "TARGET_POSTGRES_SQLALCHEMY_URL": postgres.sqlalchemy_url,
            "TARGET_POSTGRES_DEFAULT_TARGET_SCHEMA": schema,
        }
    )
    meltano = Meltano(env, tmp)
    meltano("run", "tap-analytics", "target-postgres")
    rows = postgres.query(f'SELECT count(*), count(DISTINCT id) FROM "{schema}"."resource_name"')  # noqa: S608
    assert rows == [(COUNTS["resource"], COUNTS["resource"])]
    tables = postgres.query(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = %s", (schema,)
    )
    assert {name for (name,) in tables} == {"resource_name"}, "select: resource_name.* only"
    keys = postgres.query(
        "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
        "AND a.attnum = ANY(i.indkey) WHERE i.indrelid = %s::regclass AND i.indisprimary",
        (f'"{schema}"."resource_name"',),
    )
    assert keys == [("id",)]
