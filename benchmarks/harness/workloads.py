"""The workloads, and running the contenders on each, in alternating order, round by round."""

from __future__ import annotations

import os
import statistics
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from harness.contenders import ALL
from harness.measure import Run, run_once
from harness.paths import REPO
from harness.sandbox import Sandbox

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from pathlib import Path

T = TypeVar("T")
STREAMS = ("customers", "sessions", "events", "campaigns")
PAGE_SIZE = 100
EXTRACTORS = ("floor-seq", "floor-threads", "tap", "tap1", "stock")
SEQUENTIAL = ("floor-seq", "tap1", "stock")  # a latency run of these is ~4 critical paths


@dataclass(frozen=True)
class Workload:
    """One sandbox configuration, and which contenders extract it how often."""

    key: str
    title: str
    per_stream: int
    latency_ms: int
    rounds: int
    contenders: tuple[str, ...]
    once: tuple[str, ...] = ()  # contenders run in the first round only

    @property
    def counts(self) -> dict[str, int]:
        """Return the record count of every stream."""
        return dict.fromkeys(STREAMS, self.per_stream)

    @property
    def total(self) -> int:
        """Return the record count over all streams."""
        return self.per_stream * len(STREAMS)

    def runs_in(self, round_no: int) -> list[str]:
        """Return the contenders of a round, rotated so that no one always goes first."""
        keys = [k for k in self.contenders if round_no == 0 or k not in self.once]
        shift = round_no % len(keys)
        return [*keys[shift:], *keys[:shift]]


@dataclass(frozen=True)
class Sizes:
    """Records per stream of each workload."""

    cpu: int
    small: int
    large: int
    latency: int
    latency_ms: int
    memory_small: int
    memory_large: int


FULL = Sizes(15_000, 5_000, 40_000, 10_000, 50, 2_000, 200_000)
QUICK = Sizes(1_000, 200, 1_000, 300, 20, 200, 1_000)
GROUPS = ("startup", "cpu", "marginal", "latency", "memory")


def plan(groups: Sequence[str], keys: Sequence[str], *, quick: bool, rounds: int) -> list[Workload]:
    """Return the workloads of the requested groups for the requested contenders, in order."""
    size = QUICK if quick else FULL
    extractors = tuple(k for k in keys if k in EXTRACTORS)
    # The stock tap would take ~2 minutes at 200,000 records a stream; its RSS at 40,000 is known.
    big = tuple(k for k in extractors if k != "stock" or quick)
    catalogue = {
        "startup": [Workload("startup", "Start-up", 0, 0, rounds, tuple(keys))],
        "cpu": [Workload("cpu", "CPU-bound", size.cpu, 0, rounds, extractors)],
        "marginal": [
            Workload("small", "Marginal, small", size.small, 0, rounds, extractors),
            Workload("large", "Marginal, large", size.large, 0, rounds, extractors),
        ],
        "latency": [
            Workload(
                "latency",
                "Latency-bound",
                size.latency,
                size.latency_ms,
                rounds,
                extractors,
                once=SEQUENTIAL,
            )
        ],
        "memory": [
            Workload("memory_small", "Memory, small", size.memory_small, 0, 1, extractors),
            Workload("memory_large", "Memory, large", size.memory_large, 0, 1, big),
        ],
    }
    workloads = [w for group in groups for w in catalogue.get(group, [])]
    return [w for w in workloads if w.contenders]


def run_rounds(
    workload: Workload, sandbox_exe: Path, work: Path, progress: Callable[[Run], None]
) -> list[Run]:
    """Start a sandbox and run every contender, alternating, for every round, in work/KEY."""
    workdir = work / workload.key
    workdir.mkdir(parents=True, exist_ok=True)
    runs = []
    with Sandbox(sandbox_exe, workload.counts, workload.latency_ms, workdir) as sandbox:
        for round_no in range(workload.rounds):
            for key in workload.runs_in(round_no):
                contender = ALL[key]
                cmd = contender.command(sandbox.base_url, workdir)
                expected = workload.counts if contender.extracts else None
                run = run_once(key, cmd, expected, sandbox)
                run.round = round_no
                progress(run)
                runs.append(run)
    return runs


def median(runs: Sequence[T], metric: Callable[[T], float]) -> float:
    """Return the median of a metric over runs."""
    return statistics.median(metric(run) for run in runs)


def summarize_contender(runs: list[Run]) -> dict[str, Any]:
    """Return medians, every value, and verification for one contender's runs."""
    return {
        "ok": not any(run.error for run in runs),
        "errors": [run.error for run in runs if run.error],
        "rounds": len(runs),
        "wall_s": median(runs, lambda r: r.wall_s),
        "cpu_s": median(runs, lambda r: r.cpu_s),
        "user_s": median(runs, lambda r: r.user_s),
        "sys_s": median(runs, lambda r: r.sys_s),
        "server_cpu_s": median(runs, lambda r: r.server_cpu_s),
        "peak_rss_mb": median(runs, lambda r: r.peak_rss_mb),
        "walls_s": [round(run.wall_s, 3) for run in runs],
        "cpus_s": [round(run.cpu_s, 3) for run in runs],
        "server_cpus_s": [round(run.server_cpu_s, 3) for run in runs],
        "server_bound_runs": sum(run.server_bound for run in runs),
        "pages": runs[0].summary.get("pages", {}),
    }


def summarize(workload: Workload, runs: list[Run]) -> dict[str, Any]:
    """Return the JSON summary of one workload."""
    return {
        "title": workload.title,
        "per_stream": workload.per_stream,
        "total_records": workload.total,
        "latency_ms": workload.latency_ms,
        "rounds": workload.rounds,
        "load_average_after": [round(load, 2) for load in os.getloadavg()],
        "contenders": {
            key: {
                "label": ALL[key].label,
                "command": " ".join(arg.replace(f"{REPO}/", "") for arg in ALL[key].argv),
                **summarize_contender([run for run in runs if run.contender == key]),
            }
            for key in workload.contenders
        },
        "runs": [run.as_dict() for run in runs],
    }
