"""The backfill workload: one long history read with max_parallel_requests 1, 4, 8 and 16."""

from __future__ import annotations

import json
import urllib.request
from dataclasses import dataclass
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from harness.contenders import Contender
from harness.measure import run_once
from harness.paths import TAP_EXE
from harness.sandbox import Sandbox

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from harness.measure import Run

STREAMS = ("customers", "sessions", "events", "campaigns")
PAGE_SIZE = 100
REQUESTS = (1, 4, 8, 16)
RATE_LIMIT = 40  # requests a second, in the rate-limited run
RATE_LIMITED_REQUESTS = 16
START_UP_S = 0.6  # a run's fixed cost outside its requests (`tap-analytics --about` here)


@dataclass(frozen=True)
class Backfill:
    """Records a stream and latency of the backfill workload."""

    per_stream: int
    latency_ms: int


FULL = Backfill(100_000, 50)
QUICK = Backfill(2_000, 20)
# The targets: 12 requests in flight against 4 on SPEED_UP, peak RSS at MEMORY with 16.
SPEED_UP, QUICK_SPEED_UP = Backfill(20_000, 50), Backfill(1_000, 20)
SPEED_UP_REQUESTS = (4, 12)
SPEED_UP_ROUNDS = 2  # alternating; the median of each
MEMORY, QUICK_MEMORY = Backfill(200_000, 50), Backfill(2_000, 20)
MEMORY_REQUESTS = 16
GOALS = {"speed_up": 0.35, "wall_to_bound": 1.2, "limited_to_bound": 1.1, "share_429": 0.02}
GOAL_RSS_MB = 60


def contender(requests: int) -> Contender:
    """The tap with `max_parallel_requests` set."""
    return Contender(
        f"tap-requests-{requests}",
        f"tap-analytics, max_parallel_requests {requests}",
        (str(TAP_EXE), "--config", "{config}"),
        {"max_parallel_requests": requests},
    )


def pages(per_stream: int) -> int:
    """The pages of every stream: each stream's last page may hold fewer records."""
    return len(STREAMS) * -(-per_stream // PAGE_SIZE)


def limited(base_url: str) -> tuple[int, int]:
    """Data requests the sandbox served, and how many of them it answered 429."""
    url = f"{base_url}/_sandbox/requests"  # the sandbox's own log, on this machine
    with urllib.request.urlopen(url, timeout=30) as answer:  # noqa: S310 - http by design
        log = json.load(answer)["requests"]
    data = [entry for entry in log if str(entry["path"]).startswith("/v1/")]
    return len(data), sum(entry["status"] == HTTPStatus.TOO_MANY_REQUESTS for entry in data)


def records_and_pages(size: Backfill) -> tuple[dict[str, int], int]:
    """Each stream's records at a size, and the pages of all of them."""
    return dict.fromkeys(STREAMS, size.per_stream), pages(size.per_stream)


def summary(run: Run, bound_s: float) -> dict[str, Any]:
    """A run's wall and CPU beside its bound."""
    return {
        "ok": not run.error,
        "error": run.error,
        "wall_s": round(run.wall_s, 3),
        "cpu_s": round(run.cpu_s, 3),
        "peak_rss_mb": round(run.peak_rss_mb, 1),
        "bound_s": round(bound_s, 3),
        "wall_to_bound": round(run.wall_s / bound_s, 3) if bound_s else None,
    }


def bound_s(total_pages: int, latency_ms: int, requests: int) -> float:
    """The least wall a run could take: its pages in turn on each request in flight."""
    in_flight = max(requests, len(STREAMS))  # each stream keeps one request going
    return total_pages * latency_ms / 1000 / in_flight + START_UP_S


def measure_targets(
    sandbox_exe: Path, work: Path, *, quick: bool, progress: Callable[[Run], None]
) -> dict[str, Any]:
    """12 requests in flight against 4 (alternating rounds), then peak RSS at 16."""
    size = QUICK_SPEED_UP if quick else SPEED_UP
    counts, total_pages = records_and_pages(size)
    walls: dict[int, list[Run]] = {requests: [] for requests in SPEED_UP_REQUESTS}
    workdir = work / "backfill-speed-up"
    workdir.mkdir(parents=True, exist_ok=True)
    with Sandbox(sandbox_exe, counts, size.latency_ms, workdir) as sandbox:
        for _ in range(1 if quick else SPEED_UP_ROUNDS):
            for requests in SPEED_UP_REQUESTS:
                tap = contender(requests)
                run = run_once(tap.key, tap.command(sandbox.base_url, workdir), counts, sandbox)
                progress(run)
                walls[requests].append(run)
    few, many = SPEED_UP_REQUESTS
    median = {
        n: sorted(runs, key=lambda run: run.wall_s)[len(runs) // 2] for n, runs in walls.items()
    }
    bounds = {n: bound_s(total_pages, size.latency_ms, n) for n in SPEED_UP_REQUESTS}
    speed_up = {
        "per_stream": size.per_stream,
        "latency_ms": size.latency_ms,
        "runs": {str(n): summary(median[n], bounds[n]) for n in SPEED_UP_REQUESTS},
        "ok": all(not run.error for runs in walls.values() for run in runs),
        "ratio": round(median[many].wall_s / median[few].wall_s, 3),
        "bound_ratio": round(bounds[many] / bounds[few], 3),
    }
    size = QUICK_MEMORY if quick else MEMORY
    counts, memory_pages = records_and_pages(size)
    workdir = work / "backfill-memory"
    workdir.mkdir(parents=True, exist_ok=True)
    with Sandbox(sandbox_exe, counts, size.latency_ms, workdir) as sandbox:
        tap = contender(MEMORY_REQUESTS)
        run = run_once(tap.key, tap.command(sandbox.base_url, workdir), counts, sandbox)
        progress(run)
    bound = bound_s(memory_pages, size.latency_ms, MEMORY_REQUESTS)
    memory = {"per_stream": size.per_stream, **summary(run, bound)}
    return {"speed_up": speed_up, "memory": memory}


def measure(
    sandbox_exe: Path, work: Path, *, quick: bool, progress: Callable[[Run], None]
) -> dict[str, Any]:
    """Run the backfill at each max_parallel_requests, then under a rate limit, then targets."""
    size = QUICK if quick else FULL
    counts, total_pages = records_and_pages(size)
    results: dict[str, Any] = {
        "per_stream": size.per_stream,
        "latency_ms": size.latency_ms,
        "pages": total_pages,
        "runs": {},
    }
    workdir = work / "backfill"
    workdir.mkdir(parents=True, exist_ok=True)
    with Sandbox(sandbox_exe, counts, size.latency_ms, workdir) as sandbox:
        for requests in REQUESTS:
            tap = contender(requests)
            run = run_once(tap.key, tap.command(sandbox.base_url, workdir), counts, sandbox)
            progress(run)
            bound = bound_s(total_pages, size.latency_ms, requests)
            results["runs"][str(requests)] = summary(run, bound)
    limited_dir = work / "backfill-limited"
    limited_dir.mkdir(parents=True, exist_ok=True)
    extra = ("--rate-limit", str(RATE_LIMIT), "--rate-window", "1")
    with Sandbox(sandbox_exe, counts, size.latency_ms, limited_dir, extra) as sandbox:
        tap = contender(RATE_LIMITED_REQUESTS)
        run = run_once(tap.key, tap.command(sandbox.base_url, limited_dir), counts, sandbox)
        progress(run)
        served, refused = limited(sandbox.base_url)
        found = summary(run, total_pages / RATE_LIMIT)
        found.update(rate_limit=RATE_LIMIT, requests=served, answered_429=refused)
        results["rate_limited"] = found
    results["targets"] = measure_targets(sandbox_exe, work, quick=quick, progress=progress)
    return results


def target_rows(results: dict[str, Any]) -> list[str]:
    """The issue's targets for slices, each against what this run measured."""
    targets = results.get("targets")
    if not targets:
        return []
    speed_up, memory = targets["speed_up"], targets["memory"]
    sixteen = results["runs"].get("16", {})
    limited_run = results["rate_limited"]
    share = limited_run["answered_429"] / max(limited_run["requests"], 1)
    few, many = (speed_up["runs"][str(n)] for n in SPEED_UP_REQUESTS)

    def met(ok: bool) -> str:  # noqa: FBT001
        return "yes" if ok else "**no**"

    rows = [
        (
            (
                f"wall with {SPEED_UP_REQUESTS[1]} in flight / with {SPEED_UP_REQUESTS[0]}, 4 x "
                f"{speed_up['per_stream']:,} at {speed_up['latency_ms']} ms"
            ),
            f"<= {GOALS['speed_up']}x",
            (
                f"{speed_up['ratio']:.2f}x ({many['wall_s']:.2f} s / {few['wall_s']:.2f} s; "
                f"CPU {many['cpu_s']:.2f} s / {few['cpu_s']:.2f} s; bounds' ratio "
                f"{speed_up['bound_ratio']:.2f}x)"
            ),
            met(speed_up["ratio"] <= GOALS["speed_up"]),
        ),
        (
            f"wall / bound, 16 in flight, 4 x {results['per_stream']:,}",
            f"<= {GOALS['wall_to_bound']}x",
            f"{sixteen.get('wall_to_bound', 0):.2f}x",
            met(sixteen.get("wall_to_bound", 99) <= GOALS["wall_to_bound"]),
        ),
        (
            f"rate-limited wall / (pages / {limited_run['rate_limit']} a second)",
            f"<= {GOALS['limited_to_bound']}x",
            f"{limited_run['wall_to_bound']:.2f}x",
            met(limited_run["wall_to_bound"] <= GOALS["limited_to_bound"]),
        ),
        (
            "rate-limited requests answered 429",
            f"<= {GOALS['share_429']:.0%}",
            f"{share:.1%}",
            met(share <= GOALS["share_429"]),
        ),
        (
            f"peak RSS, 4 x {memory['per_stream']:,} with {MEMORY_REQUESTS} in flight",
            f"<= {GOAL_RSS_MB} MB",
            (
                f"{memory['peak_rss_mb']:.1f} MB ({memory['wall_s']:.1f} s, "
                f"CPU {memory['cpu_s']:.1f} s)"
            ),
            met(memory["peak_rss_mb"] <= GOAL_RSS_MB),
        ),
    ]
    lines = ["| target | goal | measured | met |", "|---|---|---|---|"]
    return lines + [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows]


def render(results: dict[str, Any]) -> list[str]:
    """The backfill section of docs/performance.md."""
    lines = [
        "## Backfill: slices",
        "",
        *target_rows(results),
        "",
        (
            f"4 streams x {results['per_stream']:,} records at {results['latency_ms']} ms a "
            f"request, {results['pages']:,} pages. The bound is pages x latency / requests in "
            f"flight (at least one a stream) + {START_UP_S} s of start-up."
        ),
        "",
        "| max_parallel_requests | wall (s) | CPU (s) | peak RSS (MB) | bound (s) | wall / bound |",
        "|---|---|---|---|---|---|",
    ]
    for requests, found in results["runs"].items():
        lines.append(
            f"| {requests} | {found['wall_s']:.2f} | {found['cpu_s']:.2f} | "
            f"{found['peak_rss_mb']:.0f} | {found['bound_s']:.2f} | {found['wall_to_bound']:.2f}"
            f"{'' if found['ok'] else ' **FAILED**'} |"
        )
    limited_run = results["rate_limited"]
    share = limited_run["answered_429"] / max(limited_run["requests"], 1)
    lines += [
        "",
        (
            f"Under a limit of {limited_run['rate_limit']} requests a second, with "
            f"max_parallel_requests {RATE_LIMITED_REQUESTS}: {limited_run['wall_s']:.2f} s of wall "
            f"({limited_run['cpu_s']:.2f} s CPU) against pages / limit = "
            f"{limited_run['bound_s']:.2f} s ({limited_run['wall_to_bound']:.2f}x), "
            f"{limited_run['answered_429']} of {limited_run['requests']} requests answered 429 "
            f"({share:.1%})."
        ),
    ]
    return lines
