"""The workloads, and running every contender on one of them."""

from __future__ import annotations

import math
import os
import statistics
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from harness.measure import Run, run_once
from harness.paths import WORK
from harness.sandbox import Sandbox

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from pathlib import Path

    from harness.contenders import Contender

STREAMS = ("customers", "sessions", "events", "campaigns")
PAGE_SIZE = 100


@dataclass(frozen=True)
class Workload:
    """One sandbox configuration that every contender extracts."""

    key: str
    title: str
    per_stream: int
    latency_ms: int
    rounds: int

    @property
    def counts(self) -> dict[str, int]:
        """Return the expected record count per stream."""
        return dict.fromkeys(STREAMS, self.per_stream)

    @property
    def total(self) -> int:
        """Return the expected record count over all streams."""
        return self.per_stream * len(STREAMS)


def plan(groups: Sequence[str], *, quick: bool, rounds: int, memory_rounds: int) -> list[Workload]:
    """Return the workloads of the requested groups, in order."""
    sizes = (1_500, 500, 500, 5_000) if quick else (15_000, 10_000, 2_000, 40_000)
    cpu, latency, small, large = sizes
    catalogue = {
        "cpu": [Workload("cpu", "CPU-bound", cpu, 0, rounds)],
        "latency": [Workload("latency", "Latency-bound", latency, 50, rounds)],
        "memory": [
            Workload("memory_small", "Memory, small", small, 0, memory_rounds),
            Workload("memory_large", "Memory, large", large, 0, memory_rounds),
        ],
    }
    return [workload for group in groups for workload in catalogue[group]]


def rotated(contenders: Sequence[Contender], round_no: int) -> list[Contender]:
    """Return the contenders in this round's order, so no one always goes first."""
    shift = round_no % len(contenders)
    return [*contenders[shift:], *contenders[:shift]]


def run_rounds(
    workload: Workload,
    contenders: Sequence[Contender],
    sandbox_exe: Path,
    progress: Callable[[Run], None],
) -> list[Run]:
    """Start a sandbox and run every contender, alternating, for every round."""
    workdir = WORK / workload.key
    workdir.mkdir(parents=True, exist_ok=True)
    runs = []
    with Sandbox(sandbox_exe, workload.counts, workload.latency_ms, workdir / "sandbox.log") as sb:
        for round_no in range(workload.rounds):
            for contender in rotated(contenders, round_no):
                cmd = contender.command(sb.base_url, workdir)
                run = run_once(contender.key, cmd, workload.counts, workdir, round_no)
                progress(run)
                runs.append(run)
    return runs


def summarize_contender(runs: list[Run]) -> dict[str, Any]:
    """Return medians and verification for one contender's runs."""
    return {
        "ok": not any(run.error for run in runs),
        "errors": [run.error for run in runs if run.error],
        "wall_median_s": statistics.median(run.wall_s for run in runs),
        "walls_s": [round(run.wall_s, 4) for run in runs],
        "peak_rss_mb": statistics.median(run.peak_rss_mb for run in runs),
        "peak_rss_mb_all": [round(run.peak_rss_mb, 1) for run in runs],
        "records": runs[-1].records,
    }


def longest_pages(workload: Workload, runs: list[Run]) -> int:
    """Return the longest stream's page count, as the floor counted it if it ran."""
    for run in runs:
        if run.contender == "floor" and not run.error and run.summary.get("pages"):
            return max(run.summary["pages"].values())
    return max(1, math.ceil(workload.per_stream / PAGE_SIZE))


def summarize(workload: Workload, runs: list[Run]) -> dict[str, Any]:
    """Return the JSON summary of one workload."""
    keys = dict.fromkeys(run.contender for run in runs)
    result: dict[str, Any] = {
        "title": workload.title,
        "load_average_after": [round(load, 2) for load in os.getloadavg()],
        "per_stream": workload.per_stream,
        "total_records": workload.total,
        "latency_ms": workload.latency_ms,
        "rounds": workload.rounds,
        "contenders": {
            key: summarize_contender([run for run in runs if run.contender == key]) for key in keys
        },
        "runs": [run.as_dict() for run in runs],
    }
    if workload.latency_ms:
        pages = longest_pages(workload, runs)
        result["longest_stream_pages"] = pages
        result["critical_path_s"] = pages * workload.latency_ms / 1000
    return result
