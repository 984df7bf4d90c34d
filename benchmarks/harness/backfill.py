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


def measure(
    sandbox_exe: Path, work: Path, *, quick: bool, progress: Callable[[Run], None]
) -> dict[str, Any]:
    """Run the backfill at each max_parallel_requests, then under a rate limit."""
    size = QUICK if quick else FULL
    counts = dict.fromkeys(STREAMS, size.per_stream)
    total_pages = pages(size.per_stream)
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
            in_flight = max(requests, len(STREAMS))  # each stream keeps one request going
            bound = total_pages * size.latency_ms / 1000 / in_flight + START_UP_S
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
    return results


def render(results: dict[str, Any]) -> list[str]:
    """The backfill section of docs/performance.md."""
    lines = [
        "## Backfill: slices",
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
