"""The code location: the backfill's windows as partitions of one asset, then the schedule.

A code server loads it with `-m orchestrate.definitions` from the project root (`make
lint-orchestrate` validates it so); `make backfill` runs it in-process (orchestrate/run.py).
"""

# No `from __future__ import annotations`: Dagster reads the context's type at definition time.
import os
import subprocess
from collections import deque
from pathlib import Path

from dagster import (
    AssetExecutionContext,
    DefaultScheduleStatus,
    Definitions,
    Failure,
    JobDefinition,
    MaterializeResult,
    OpExecutionContext,
    RetryPolicy,
    RunRequest,
    ScheduleEvaluationContext,
    SkipReason,
    StaticPartitionsDefinition,
    asset,
    define_asset_job,
    job,
    multiprocess_executor,
    op,
    schedule,
)

from orchestrate.plan import DATE_FORMAT, plan_from_env

PLAN = plan_from_env()
PROJECT = Path(os.environ.get("MELTANO_PROJECT_ROOT") or Path(__file__).resolve().parents[1])
# The Dagster pool every window's step takes a slot of: its BACKFILL_CONCURRENCY slots (set by
# orchestrate/run.py, or `dagster instance concurrency set` on a deployment) cap windows at once.
POOL = "analytics-api"
RETRIES = 2  # a failed window is retried alone, resuming from its own Meltano state
SCHEDULE_CRON = os.environ.get("BACKFILL_SCHEDULE_CRON") or "0 * * * *"
# Windows are not cron periods (BACKFILL_WINDOWS equal spans of any length), hence static keys.
WINDOWS = StaticPartitionsDefinition([window.key for window in PLAN.windows])
TAIL_LINES = 40


def run_meltano(context: OpExecutionContext, args: list[str], env: dict[str, str]) -> None:
    """Run one `meltano` command in the project; a failure carries the tail of its output."""
    # A plain subprocess: dagster-meltano (1.5.5 pins Dagster 1.9) runs only `meltano run`, not
    # `el --state-id`, and Pipes would add nothing, since Meltano reports no events through it.
    command = ["meltano", *args]
    context.log.info("$ %s (%s)", " ".join(command), " ".join(f"{k}={v}" for k, v in env.items()))
    tail: deque[str] = deque(maxlen=TAIL_LINES)
    with subprocess.Popen(
        command,
        cwd=PROJECT,
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    ) as child:
        assert child.stdout is not None  # noqa: S101 (for mypy: it is a pipe)
        tail.extend(child.stdout)
    if child.returncode != 0:
        description = f"meltano {args[0]} exited {child.returncode}:\n{''.join(tail)}"
        raise Failure(description=description)


@asset(
    partitions_def=WINDOWS,
    pool=POOL,
    retry_policy=RetryPolicy(max_retries=RETRIES),
    description="Records of every stream updated in one window, loaded by `meltano el`.",
)
def analytics_history(context: AssetExecutionContext) -> MaterializeResult[None]:
    """Load one window with `meltano el` under its own state id (docs/windows.md says why)."""
    window = PLAN.window(context.partition_key)
    args = ["el", "tap-analytics", "target-postgres", "--state-id", window.state_id]
    run_meltano(context.op_execution_context, args, window.env())
    return MaterializeResult(metadata={"state_id": window.state_id, **window.env()})


@op(retry_policy=RetryPolicy(max_retries=RETRIES))
def incremental_sync(context: OpExecutionContext) -> None:
    """`meltano run` from the end of the last window on; from its own bookmark afterwards."""
    start = {"TAP_ANALYTICS_START_DATE": f"{PLAN.schedule_start:{DATE_FORMAT}}"}
    run_meltano(context, ["run", "tap-analytics", "target-postgres"], start)


backfill_job = define_asset_job(
    "backfill", selection=[analytics_history], executor_def=multiprocess_executor
)


@job(executor_def=multiprocess_executor)
def incremental() -> None:
    """The open-ended schedule's job."""
    incremental_sync()


@schedule(
    job=incremental, cron_schedule=SCHEDULE_CRON, default_status=DefaultScheduleStatus.RUNNING
)
def incremental_schedule(context: ScheduleEvaluationContext) -> RunRequest | SkipReason:
    """Start `meltano run` only once every window of the backfill has been loaded."""
    loaded = context.instance.get_materialized_partitions(analytics_history.key)
    missing = [window.key for window in PLAN.windows if window.key not in loaded]
    if missing:
        return SkipReason(f"backfill not finished: {len(missing)} window(s) left: {missing}")
    return RunRequest()


defs = Definitions(
    assets=[analytics_history],
    jobs=[backfill_job, incremental],
    schedules=[incremental_schedule],
)


def backfill() -> JobDefinition:
    """The backfill job, for `reconstructable` (the multiprocess executor rebuilds it)."""
    return defs.resolve_job_def("backfill")


def incremental_run() -> JobDefinition:
    """The schedule's job, for `reconstructable`."""
    return defs.resolve_job_def("incremental")
