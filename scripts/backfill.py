"""`make backfill`: the history in windows as Dagster partitions, then the schedule's first run.

The services are the demo's (tests/e2e/e2ekit.py): the bundled sandbox on a free port and an
embedded PostgreSQL, unless TAP_ANALYTICS_BASE_URL or TARGET_POSTGRES_SQLALCHEMY_URL point
elsewhere. Dagster runs in orchestrate/.venv (orchestrate/run.py); then every stream is checked:
rows in PostgreSQL, distinct ids, and records in the API where it can say (the sandbox can).
Everything kept lives under .backfill/ (or $TAP_ANALYTICS_BACKFILL_DIR): PostgreSQL's and the
sandbox's data, Meltano's system database with the window states, and Dagster's instance.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "e2e"))
from e2ekit import (
    BIN,
    CLIENT_ID,
    CLIENT_SECRET,
    ROOT,
    STREAMS,
    CommandError,
    Meltano,
    Postgres,
    base_env,
    embedded_postgres,
    project_lock,
    sandbox_process,
)

sys.path.insert(0, str(ROOT))
from orchestrate.plan import PlanError, plan_from_env

if TYPE_CHECKING:
    from types import FrameType

WORKDIR = Path(os.environ.get("TAP_ANALYTICS_BACKFILL_DIR") or ROOT / ".backfill").resolve()
PGDATA, LOGS = WORKDIR / "pgdata", WORKDIR / "logs"
ORCHESTRATE_PYTHON = ROOT / "orchestrate" / ".venv" / "bin" / "python"
DAGSTER_HOME = WORKDIR / "dagster"
PASSED_ON = ("TAP_ANALYTICS_", "TARGET_POSTGRES_", "BACKFILL_")  # the caller's overrides
DEFAULT_SCHEMA = "analytics"
COUNTS_PATH = "/_sandbox/counts"
HTTP_TIMEOUT = 30


def say(text: str = "") -> None:
    """Print one line at once."""
    print(text, flush=True)


def caller_settings() -> dict[str, str]:
    """The caller's TAP_ANALYTICS_*, TARGET_POSTGRES_* and BACKFILL_* variables."""
    return {k: v for k, v in os.environ.items() if k.startswith(PASSED_ON)}


def own_postgres(url: str) -> Postgres:
    """The caller's PostgreSQL, from target-postgres's SQLAlchemy URL."""
    conninfo = url.replace("postgresql+psycopg://", "postgresql://", 1)
    return Postgres("TARGET_POSTGRES_SQLALCHEMY_URL", conninfo, url)


def api_counts(base_url: str) -> dict[str, int]:
    """Records of each stream in the API, where it can say ({} otherwise)."""
    try:
        response = requests.get(base_url.rstrip("/") + COUNTS_PATH, timeout=HTTP_TIMEOUT)
        response.raise_for_status()
        return {name: int(count) for name, count in response.json().items()}
    except (requests.RequestException, ValueError, AttributeError, TypeError):
        return {}


def table_rows(postgres: Postgres, schema: str, table: str) -> tuple[int, int]:
    """Rows and distinct ids of a loaded table ((0, 0) when there is no such table)."""
    if postgres.query("SELECT to_regclass(%s)", (f'"{schema}"."{table}"',))[0][0] is None:
        return 0, 0
    sql = f'SELECT count(*), count(DISTINCT id) FROM "{schema}"."{table}"'  # noqa: S608
    rows, ids = postgres.query(sql)[0]
    return rows, ids


def check(postgres: Postgres, schema: str, counts: dict[str, int]) -> bool:
    """Print rows, distinct ids and API records of every stream; return whether they agree."""
    say(f"\n  {'table':<24}{'rows':>8}{'ids':>8}{'in API':>8}  check")
    agree = True
    for table in STREAMS:
        rows, ids = table_rows(postgres, schema, table)
        expected = counts.get(table)
        ok = rows == ids and expected in {None, ids}
        agree = agree and ok
        api = "?" if expected is None else str(expected)
        say(f"  {schema + '.' + table:<24}{rows:>8}{ids:>8}{api:>8}  {'OK' if ok else 'MISMATCH'}")
    if not counts:
        say(f"  (the API has no {COUNTS_PATH}: rows checked against distinct ids only)")
    return agree


def orchestrate(env: dict[str, str]) -> int:
    """Run the backfill and the schedule's first run in orchestrate/.venv; return its exit code."""
    command = [str(ORCHESTRATE_PYTHON), "-m", "orchestrate.run"]
    return subprocess.call(command, cwd=ROOT, env=env)


def backfill() -> int:
    """Set up the services, run Dagster, check the tables; return the exit code."""
    started, settings = time.monotonic(), caller_settings()
    plan_from_env(settings)  # a bad BACKFILL_* variable stops the run before anything starts
    LOGS.mkdir(parents=True, exist_ok=True)
    schema = settings.get("TARGET_POSTGRES_DEFAULT_TARGET_SCHEMA") or DEFAULT_SCHEMA
    with contextlib.ExitStack() as services:
        DAGSTER_HOME.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / "orchestrate" / "dagster.yaml", DAGSTER_HOME / "dagster.yaml")
        env = {**base_env(WORKDIR), "MELTANO_ENVIRONMENT": "dev", "DAGSTER_HOME": str(DAGSTER_HOME)}
        say("backfill: meltano install tap-analytics target-postgres")
        Meltano(env, LOGS)("install", "tap-analytics", "target-postgres")
        if url := settings.get("TARGET_POSTGRES_SQLALCHEMY_URL"):
            postgres = own_postgres(url)
        else:
            (PGDATA / ".handle_pids.json").unlink(missing_ok=True)  # left by a killed run
            postgres = services.enter_context(embedded_postgres(PGDATA))
        say(f"backfill: PostgreSQL {postgres.kind}, schema {schema}")
        if "TAP_ANALYTICS_BASE_URL" not in settings:
            sandbox_data = ["--data-dir", str(WORKDIR / "sandbox")]
            sandbox = services.enter_context(sandbox_process(*sandbox_data, workdir=LOGS))
            settings = {
                "TAP_ANALYTICS_BASE_URL": sandbox.base_url,
                "TAP_ANALYTICS_CLIENT_ID": CLIENT_ID,
                "TAP_ANALYTICS_CLIENT_SECRET": CLIENT_SECRET,
                **settings,
            }
        base_url = settings["TAP_ANALYTICS_BASE_URL"]
        say(f"backfill: API {base_url}")
        settings.setdefault("TARGET_POSTGRES_SQLALCHEMY_URL", postgres.sqlalchemy_url)
        env.update({**settings, "PATH": f"{BIN}{os.pathsep}{env['PATH']}"})
        with project_lock():  # no other Meltano command of this project beside the windows'
            exit_code = orchestrate(env)
        agree = check(postgres, schema, api_counts(base_url))
    say(f"\nbackfill: finished in {time.monotonic() - started:.1f} s")
    if exit_code == 0 and not agree:
        say("backfill: the tables and the API disagree (MISMATCH above)")
    return exit_code or (0 if agree else 1)


def on_sigterm(_signum: int, _frame: FrameType | None) -> None:
    """Turn SIGTERM into an exception, so that the services are stopped."""
    raise SystemExit(128 + signal.SIGTERM)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, on_sigterm)
    try:
        sys.exit(backfill())
    except CommandError as error:
        say(f"backfill: {error}")
        sys.exit(1)
    except PlanError as error:
        say(f"backfill: {error}")
        sys.exit(2)
