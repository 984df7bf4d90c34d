"""`meltano run tap-analytics target-postgres` end to end, and the loader's settings.

The tap alone and the loader alone run the executables Meltano runs (the plugin venvs'), on
the same sandbox and the same config, so their shares of the pipeline compare like for like.
Every load goes into an empty schema of a database this module creates and drops, and is
checked by counting the rows.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psutil
import psycopg

from harness.measure import child_env, run_once
from harness.paths import REPO, VENV_BIN
from harness.sandbox import CLIENT_ID, CLIENT_SECRET, Sandbox
from harness.workloads import STREAMS, median

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

PG_ADMIN = "host=127.0.0.1 port=5432 user=postgres dbname=postgres connect_timeout=3"
DATABASE = "tap_analytics_bench"
SCHEMA = "analytics"  # meltano.yml's default_target_schema
MELTANO = VENV_BIN / "meltano"
TAP_VENV = REPO / ".meltano" / "extractors" / "tap-analytics" / "venv"
TARGET_VENV = REPO / ".meltano" / "loaders" / "target-postgres" / "venv"
PLUGIN_TAP = TAP_VENV / "bin" / "tap-analytics"
PLUGIN_TARGET = TARGET_VENV / "bin" / "target-postgres"
OWN_PREFIXES = ("MELTANO_", "TAP_ANALYTICS_", "TARGET_POSTGRES_")
RUN = ("run", "--full-refresh", "--no-state-update", "tap-analytics", "target-postgres")
MASKED = "*****"  # how `meltano config print` shows a sensitive value


@dataclass(frozen=True)
class LoaderSettings:
    """target-postgres settings over meltano.yml's, and what they cost besides time."""

    key: str
    env: dict[str, str]
    trade_off: str


SHIPPED = LoaderSettings("meltano.yml as shipped", {}, "")
VARIANTS = (
    SHIPPED,
    LoaderSettings(
        "validate_records: false",
        {"TARGET_POSTGRES_VALIDATE_RECORDS": "false"},
        "the loader stops checking records against the SCHEMA message; the tap's verbatim "
        "path does not conform records either, so a record of the wrong type reaches "
        "PostgreSQL and fails (or is cast) there, with a less clear error",
    ),
    LoaderSettings(
        "batch_size_rows: 100000",
        {"TARGET_POSTGRES_BATCH_SIZE_ROWS": "100000"},
        "up to 100,000 records a stream held in the loader's memory before a write, and "
        "STATE goes out only after a batch is committed: a killed run re-extracts more",
    ),
    LoaderSettings(
        "use_copy: true",
        {"TARGET_POSTGRES_USE_COPY": "true"},
        "COPY FROM STDIN instead of INSERT into the temporary table; needs the psycopg "
        "driver (meltano.yml's sqlalchemy_url uses it); the same rows and the same merge",
    ),
    LoaderSettings(
        "add_record_metadata: false, activate_version: false",
        {
            "TARGET_POSTGRES_ADD_RECORD_METADATA": "false",
            "TARGET_POSTGRES_ACTIVATE_VERSION": "false",
        },
        "no _sdc_* columns (extracted, batched, deleted at); ACTIVATE_VERSION of replace "
        "resources is ignored, so rows gone from the API stay; the end-to-end tests read "
        "_sdc_batched_at",
    ),
    LoaderSettings(
        "load_method: append-only",
        {"TARGET_POSTGRES_LOAD_METHOD": "append-only"},
        "no merge on the key: an updated record becomes a second row, so every incremental "
        "run adds rows to deduplicate downstream",
    ),
    LoaderSettings(
        "validate_records: false, use_copy: true",
        {"TARGET_POSTGRES_VALIDATE_RECORDS": "false", "TARGET_POSTGRES_USE_COPY": "true"},
        "those of validate_records: false",
    ),
    LoaderSettings(
        "validate_records: false, use_copy: true, batch_size_rows: 100000",
        {
            "TARGET_POSTGRES_VALIDATE_RECORDS": "false",
            "TARGET_POSTGRES_USE_COPY": "true",
            "TARGET_POSTGRES_BATCH_SIZE_ROWS": "100000",
        },
        "those of validate_records: false and of batch_size_rows: 100000",
    ),
)


class PipelineSkippedError(RuntimeError):
    """The pipeline cannot be measured on this machine (and why)."""


def query(sql: str, database: str = DATABASE) -> list[tuple[Any, ...]]:
    """Run one statement and return its rows."""
    conninfo = PG_ADMIN.replace("dbname=postgres", f"dbname={database}")
    with psycopg.connect(conninfo, autocommit=True) as connection:
        cursor = connection.execute(sql)
        return cursor.fetchall() if cursor.description else []


def postgres_cpu_seconds() -> float:
    """Return the CPU seconds of the PostgreSQL server: live processes and reaped backends."""
    total = 0.0
    for process in psutil.process_iter(["name", "ppid"]):
        if process.info["name"] != "postgres":
            continue
        try:
            times = process.cpu_times()
            parent = psutil.Process(process.info["ppid"]).name()
        except psutil.Error:
            continue  # a backend that ended meanwhile is counted by its parent
        total += times.user + times.system
        if parent != "postgres":  # the postmaster: add the backends it has reaped
            total += times.children_user + times.children_system
    return total


def meltano_env(base_url: str, workdir: Path) -> dict[str, str]:
    """Return the environment without our settings, pointed at the sandbox and the database."""
    env = {k: v for k, v in child_env().items() if not k.startswith(OWN_PREFIXES)}
    env.update(
        {
            "MELTANO_ENVIRONMENT": "dev",
            "MELTANO_DATABASE_URI": f"sqlite:///{workdir / 'meltano.db'}",
            "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false",
            "MELTANO_CLI_DISABLE_VERSION_CHECK": "true",
            "MELTANO_CLI_LOG_FORMAT": "uncolored",
            "TAP_ANALYTICS_BASE_URL": base_url,
            "TAP_ANALYTICS_CLIENT_ID": CLIENT_ID,
            "TAP_ANALYTICS_CLIENT_SECRET": CLIENT_SECRET,
            "TARGET_POSTGRES_SQLALCHEMY_URL": (
                f"postgresql+psycopg://postgres@127.0.0.1:5432/{DATABASE}"
            ),
            "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        }
    )
    return env


def meltano(args: list[str], env: dict[str, str], log: Path) -> subprocess.CompletedProcess[str]:
    """Run one meltano command in the project, output to log."""
    done = subprocess.run(
        [str(MELTANO), *args], cwd=REPO, env=env, capture_output=True, text=True, check=False
    )
    log.write_text(done.stdout + done.stderr)
    return done


def ensure_ready(workdir: Path) -> None:
    """Check PostgreSQL and install the plugins once; raise PipelineSkippedError if not."""
    try:
        query("SELECT 1", "postgres")
    except psycopg.OperationalError as exc:
        msg = f"PostgreSQL on 127.0.0.1:5432 is unreachable ({str(exc).strip()})"
        raise PipelineSkippedError(msg) from None
    if not (PLUGIN_TAP.exists() and PLUGIN_TARGET.exists()):
        print("  meltano install (once; the plugin venvs go to .meltano/)", flush=True)
        env = meltano_env("http://127.0.0.1:9", workdir)
        if meltano(["install"], env, workdir / "install.log").returncode:
            msg = f"meltano install failed: see {workdir / 'install.log'}"
            raise PipelineSkippedError(msg)


@contextlib.contextmanager
def fresh_database() -> Iterator[None]:
    """Create the benchmark database for a block of runs, and drop it afterwards."""
    query(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)", "postgres")
    query(f"CREATE DATABASE {DATABASE}", "postgres")
    try:
        yield
    finally:
        query(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)", "postgres")


def warm_up(env: dict[str, str], workdir: Path) -> None:
    """Compile the plugin venvs' modules, create Meltano's system database, cache the catalog.

    uv, which Meltano installs plugins with, writes no .pyc files; a plugin's first run would
    compile them, and the timings would depend on which run came first.
    """
    with (workdir / "warm-up.log").open("wb") as out:
        for venv in (TAP_VENV, TARGET_VENV):
            compile_all = [
                str(venv / "bin" / "python"),
                "-m",
                "compileall",
                "-q",
                str(venv / "lib"),
            ]
            subprocess.run(compile_all, env=env, stdout=out, stderr=subprocess.STDOUT, check=False)
    meltano(["select", "tap-analytics", "--list"], env, workdir / "select.log")


def row_error(per_stream: int) -> str:
    """Say how the loaded rows differ from the sandbox's records, or return ''."""
    rows = {}
    for stream in STREAMS:
        try:
            table = f'"{SCHEMA}"."{stream}"'  # constants, not input
            rows[stream] = int(query(f"SELECT count(*) FROM {table}")[0][0])  # noqa: S608
        except psycopg.errors.UndefinedTable:
            rows[stream] = 0
    if rows == dict.fromkeys(STREAMS, per_stream):
        return ""
    return f"rows loaded differ from the sandbox's {per_stream} records a stream: {rows}"


def timed(
    cmd: list[str], env: dict[str, str], log: Path, stdin: Path | None = None
) -> dict[str, Any]:
    """Run cmd into an empty schema; return wall, CPU (with its children), PostgreSQL CPU."""
    query(f'DROP SCHEMA IF EXISTS "{SCHEMA}" CASCADE')
    pg_before = postgres_cpu_seconds()
    with log.open("wb") as out, (stdin or Path(os.devnull)).open("rb") as source:
        start = time.perf_counter()
        proc = subprocess.Popen(
            cmd, cwd=REPO, env=env, stdin=source, stdout=out, stderr=subprocess.STDOUT
        )
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
    code = os.waitstatus_to_exitcode(status)
    return {
        "wall_s": wall,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "postgres_cpu_s": postgres_cpu_seconds() - pg_before,
        "error": f"exit code {code}; see {log}" if code else "",
    }


def target_config(env: dict[str, str], workdir: Path) -> Path:
    """Write the loader's config as Meltano would pass it (masked values left out)."""
    done = meltano(["config", "print", "target-postgres"], env, workdir / "config.log")
    config = {k: v for k, v in json.loads(done.stdout).items() if v != MASKED}
    path = workdir / "target.config.json"
    path.write_text(json.dumps(config))
    return path


def summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Return the medians and the checks of one kind of run."""
    return {
        "ok": not any(run["error"] for run in runs),
        "errors": [run["error"] for run in runs if run["error"]],
        "rounds": len(runs),
        "wall_s": median(runs, lambda r: r["wall_s"]),
        "cpu_s": median(runs, lambda r: r["cpu_s"]),
        "postgres_cpu_s": median(runs, lambda r: r.get("postgres_cpu_s", 0.0)),
        "walls_s": [round(run["wall_s"], 2) for run in runs],
    }


def show(progress: Callable[[str], None], what: str, run: dict[str, Any]) -> None:
    """Report one finished run."""
    progress(
        f"{what:<45} wall {run['wall_s']:6.2f} s  CPU {run['cpu_s']:6.2f} s"
        f"  PostgreSQL CPU {run.get('postgres_cpu_s', 0.0):5.2f} s  {run['error'][:300]}"
    )


def measure(  # noqa: PLR0913
    variants: tuple[LoaderSettings, ...],
    per_stream: int,
    *,
    rounds: int,
    sandbox_exe: Path,
    work: Path,
    progress: Callable[[str], None],
    alone: bool,
) -> dict[str, Any]:
    """Time each variant's pipeline (and, if alone, the tap and the loader by themselves)."""
    workdir = work / "pipeline"
    workdir.mkdir(parents=True, exist_ok=True)
    ensure_ready(workdir)
    counts = dict.fromkeys(STREAMS, per_stream)
    runs: dict[str, list[dict[str, Any]]] = {"tap alone": [], "loader alone": []}
    runs.update({variant.key: [] for variant in variants})
    with Sandbox(sandbox_exe, counts, 0, workdir) as sandbox, fresh_database():
        env = meltano_env(sandbox.base_url, workdir)
        warm_up(env, workdir)
        tap_config = workdir / "tap.config.json"
        credentials = {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}
        tap_config.write_text(json.dumps({**credentials, "base_url": sandbox.base_url}))
        loader_config = target_config(env, workdir)
        for round_no in range(rounds):
            if alone:
                tap = [str(PLUGIN_TAP), "--config", str(tap_config)]
                run = run_once("tap", tap, counts, sandbox, keep_output=True)
                runs["tap alone"].append(result := {**run.as_dict(), "postgres_cpu_s": 0.0})
                show(progress, "tap alone", result)
                loader = [str(PLUGIN_TARGET), "--config", str(loader_config)]
                result = timed(loader, child_env(), workdir / "loader.log", workdir / "tap.out")
                result["error"] = result["error"] or row_error(per_stream)
                runs["loader alone"].append(result)
                show(progress, "loader alone (the tap's output from a file)", result)
            shift = round_no % len(variants)
            for variant in (*variants[shift:], *variants[:shift]):
                log = workdir / f"meltano-{variants.index(variant)}.log"
                result = timed([str(MELTANO), *RUN], {**env, **variant.env}, log)
                result["error"] = result["error"] or row_error(per_stream)
                runs[variant.key].append(result)
                show(progress, f"meltano run, {variant.key}", result)
    return {
        "per_stream": per_stream,
        "total_records": per_stream * len(STREAMS),
        "rounds": rounds,
        "alone": {key: summary(runs[key]) for key in ("tap alone", "loader alone") if runs[key]},
        "variants": {
            variant.key: {
                "env": variant.env,
                "trade_off": variant.trade_off,
                **summary(runs[variant.key]),
            }
            for variant in variants
        },
    }
