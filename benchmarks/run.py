"""Benchmark the floor, tap-analytics and a stock singer-sdk tap against the sandbox (make bench).

Writes benchmarks/results/latest.{md,json,png}; exits 1 if any contender failed (a non-zero
exit or fewer RECORD messages than the sandbox holds). --quick writes to benchmarks/.work/.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.chart_env import draw_png
from harness.contenders import ALL
from harness.paths import REPO, RESULTS, SANDBOX_EXE, WORK
from harness.report import readme_block, render
from harness.workloads import plan, run_rounds, summarize

if TYPE_CHECKING:
    from harness.measure import Run

GROUPS = ("cpu", "latency", "memory")
README_START = "<!-- benchmark:start -->"
README_END = "<!-- benchmark:end -->"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, 1 round (smoke test)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per workload (default 3)")
    parser.add_argument("--memory-rounds", type=int, help="rounds of the memory workload")
    parser.add_argument(
        "--workloads", default=",".join(GROUPS), help="comma list of " + "/".join(GROUPS)
    )
    parser.add_argument(
        "--contenders",
        default="floor,tap,stock",
        help="comma list of floor/tap/stock/tap1 (tap1: max_parallel_streams 1)",
    )
    parser.add_argument("--sandbox", type=Path, default=SANDBOX_EXE, help="sandbox executable")
    parser.add_argument("--out", type=Path, help="output directory (default benchmarks/results)")
    parser.add_argument("--no-chart", action="store_true", help="skip the PNG (and its venv)")
    parser.add_argument(
        "--readme",
        type=Path,
        help=f"also put the tables between {README_START} and {README_END} in this file",
    )
    args = parser.parse_args(argv)
    args.groups = [g for g in args.workloads.split(",") if g]
    args.keys = [k for k in args.contenders.split(",") if k]
    if unknown := {*args.groups} - {*GROUPS} | {*args.keys} - {*ALL}:
        parser.error(f"unknown workload or contender: {', '.join(sorted(unknown))}")
    if args.quick:
        args.rounds = 1
    if args.memory_rounds is None:
        args.memory_rounds = args.rounds
    if args.out is None:
        args.out = WORK / "quick" if args.quick else RESULTS
    return args


def git(*cmd: str) -> str:
    """Return the output of a git command in the repository."""
    return subprocess.run(
        ["git", *cmd], cwd=REPO, capture_output=True, text=True, check=False
    ).stdout.strip()


def git_commit() -> str:
    """Return the short commit of the working tree, marked dirty if it is."""
    dirty = "+dirty" if git("status", "--porcelain", "--untracked-files=no") else ""
    return (git("rev-parse", "--short", "HEAD") or "unknown") + dirty


def meta(args: argparse.Namespace) -> dict[str, Any]:
    """Return the context of this run."""
    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": git_commit(),
        "cpus": os.cpu_count(),
        "load_average_before": [round(load, 2) for load in os.getloadavg()],
        "machine": platform.platform(),
        "python": platform.python_version(),
        "singer_sdk": metadata.version("singer-sdk"),
        "quick": args.quick,
        "rounds": args.rounds,
        "memory_rounds": args.memory_rounds,
        "contenders": args.keys,
    }


def progress(run: Run) -> None:
    """Print one finished run."""
    verdict = "ok" if not run.error else "FAILED " + run.error.splitlines()[0][:200]
    records = sum(run.records.values())
    print(
        f"  round {run.round + 1} {run.contender:<6} {run.wall_s:8.2f} s"
        f" {run.peak_rss_mb:7.1f} MB {records:>8,} records  {verdict}",
        flush=True,
    )


def measure(args: argparse.Namespace) -> dict[str, Any]:
    """Run every workload and return the results."""
    contenders = [ALL[key] for key in args.keys]
    workloads = plan(
        args.groups, quick=args.quick, rounds=args.rounds, memory_rounds=args.memory_rounds
    )
    results: dict[str, Any] = {"meta": meta(args), "workloads": {}}
    for workload in workloads:
        print(
            f"{workload.title}: 4 x {workload.per_stream:,} records,"
            f" {workload.latency_ms} ms latency, {workload.rounds} round(s)",
            flush=True,
        )
        runs = run_rounds(workload, contenders, args.sandbox, progress)
        results["workloads"][workload.key] = summarize(workload, runs)
    return results


def write(results: dict[str, Any], out: Path, *, chart: bool) -> None:
    """Write latest.json, latest.md and latest.png (drawn in benchmarks/.work/chart-venv)."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "latest.json").write_text(json.dumps(results, indent=2) + "\n")
    markdown = render(results)
    (out / "latest.md").write_text(markdown)
    if chart:
        draw_png(out / "latest.json", out / "latest.png")
    kinds = "md,json,png" if chart else "md,json"
    print(f"\n{markdown}\nwritten to {out.relative_to(REPO)}/latest.{{{kinds}}}")


def update_readme(results: dict[str, Any], readme: Path) -> None:
    """Replace the text between the benchmark markers of readme with the latest tables."""
    text = readme.read_text()
    start, end = text.find(README_START), text.find(README_END)
    if start < 0 or end < start:
        print(f"{readme}: no {README_START} ... {README_END} markers; not updated", file=sys.stderr)
        return
    block = f"{README_START}\n{readme_block(results)}"
    readme.write_text(text[:start] + block + text[end:])
    print(f"updated the benchmark tables in {readme}")


def failed(results: dict[str, Any]) -> list[str]:
    """Return 'workload/contender' for every contender that failed."""
    return [
        f"{key}/{name}"
        for key, workload in results["workloads"].items()
        for name, entry in workload["contenders"].items()
        if not entry["ok"]
    ]


def main(argv: list[str] | None = None) -> int:
    """Measure, write the reports, and fail if any contender failed."""
    args = parse_args(argv)
    results = measure(args)
    write(results, args.out, chart=not args.no_chart)
    if args.readme:
        update_readme(results, args.readme)
    if failures := failed(results):
        print("FAILED: " + ", ".join(failures), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
