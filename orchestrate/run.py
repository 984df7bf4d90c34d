"""`make backfill`'s Dagster part: every window not loaded yet, then the schedule's first run.

Runs in orchestrate/.venv against the Dagster instance in $DAGSTER_HOME, with the multiprocess
executor: the first window alone (its job creates the tables), then the other windows' runs at
once, one process each (as Dagster's default run launcher does), every run's step waiting for a
slot of the pool, so that BACKFILL_CONCURRENCY windows load at a time.
"""

from __future__ import annotations

import subprocess
import sys
import time

from dagster import DagsterInstance, build_schedule_context, execute_job, reconstructable

from orchestrate.definitions import (
    PLAN,
    POOL,
    analytics_history,
    backfill,
    incremental_run,
    incremental_schedule,
)
from orchestrate.plan import DATE_FORMAT, Window

ATTEMPT_EVENTS = {"STEP_START", "STEP_RESTARTED"}  # a first attempt, then each retry
BLOCKED = f"Step blocked by limit for pool {POOL}"  # Dagster's event while the pool is full
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def say(text: str) -> None:
    """Print one line at once."""
    print(text, flush=True)


def run_window(instance: DagsterInstance, window: Window) -> bool:
    """One partition run of the backfill job; return whether it succeeded."""
    span = f"{window.env()['TAP_ANALYTICS_START_DATE']} .. {window.env()['TAP_ANALYTICS_END_DATE']}"
    say(f"  window {span}: started (state id {window.state_id})")
    started = time.monotonic()
    tags = {"dagster/partition": window.key}
    result = execute_job(reconstructable(backfill), instance, run_config=QUIET, tags=tags)
    attempts = sum(event.event_type_value in ATTEMPT_EVENTS for event in result.all_events)
    waited = any(str(event.message).startswith(BLOCKED) for event in result.all_events)
    outcome = "loaded" if result.success else "FAILED"
    say(
        f"  window {span}: {outcome} in {time.monotonic() - started:.1f} s"
        f" ({attempts} attempt{'s' * (attempts > 1)},{' waited for a slot,' * waited}"
        f" run {result.run_id[:8]})"
    )
    return result.success


def main() -> int:
    """Run the backfill and the schedule's first run; return the exit code."""
    instance = DagsterInstance.get()
    instance.event_log_storage.set_concurrency_slots(POOL, PLAN.concurrency)
    loaded = instance.get_materialized_partitions(analytics_history.key)
    todo = [window for window in PLAN.windows if window.key not in loaded]
    say(
        f"backfill: {len(PLAN.windows)} windows, {len(PLAN.windows) - len(todo)} already loaded,"
        f" up to {PLAN.concurrency} at once (Dagster pool {POOL!r})"
    )
    first, rest = PLAN.windows[0], [window for window in todo if window != PLAN.windows[0]]
    if first in todo and not run_window(instance, first):
        say("backfill: the first window failed; the others need its tables: stopping")
        return 1
    command = [sys.executable, "-m", "orchestrate.run", "--window"]
    runs = [subprocess.Popen([*command, window.key]) for window in rest]
    failed = sum(run.wait() != 0 for run in runs)
    tick = incremental_schedule.evaluate_tick(build_schedule_context(instance=instance))
    if not tick.run_requests:
        say(f"schedule: skipped: {tick.skip_message} ({failed} failed now: rerun `make backfill`)")
        return 1
    say(f"schedule: every window loaded; first run from {PLAN.schedule_start:{DATE_FORMAT}} on")
    started = time.monotonic()
    result = execute_job(reconstructable(incremental_run), instance, run_config=QUIET)
    outcome = "done" if result.success else "FAILED"
    say(f"schedule: meltano run {outcome} in {time.monotonic() - started:.1f} s")
    return 0 if result.success else 1


def window_main(key: str) -> int:
    """Run one window's partition; return the exit code."""
    return 0 if run_window(DagsterInstance.get(), PLAN.window(key)) else 1


if __name__ == "__main__":
    sys.exit(window_main(sys.argv[2]) if sys.argv[1:2] == ["--window"] else main())
