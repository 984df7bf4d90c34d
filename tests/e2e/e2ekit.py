"""End-to-end helpers: PostgreSQL (the machine's or an embedded one) and Meltano."""

from __future__ import annotations

import os
import subprocess
import sys
import typing as t
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
MELTANO = BIN / "meltano"
TAP = BIN / "tap-analytics"
CLIENT_ID = "sandbox-client"
CLIENT_SECRET = "sandbox-secret"
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
