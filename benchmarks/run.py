"""Benchmark tap-analytics against the floor and a stock singer-sdk tap (make bench).

Writes benchmarks/results/latest.{json,md} (--quick: benchmarks/.work/quick/) and exits 1 if any
contender failed (a non-zero exit, or RECORD counts that differ from the sandbox's).
--loader-settings times the pipeline under each target-postgres variant instead
(results/loader.{json,md}); --docs regenerates docs/performance.md and results/*.md from the
committed results.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness import backfill, pipeline
from harness.contenders import ALL
from harness.docs import render_docs
from harness.paths import DOCS, REPO, RESULTS, SANDBOX_EXE, WORK
from harness.report import render, render_loader
from harness.workloads import GROUPS, plan, run_rounds, summarize

if TYPE_CHECKING:
    from harness.measure import Run

PIPELINE_PER_STREAM = 20_000


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, 1 round (smoke test)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds (default 3)")
    every = (*GROUPS, "backfill", "pipeline")
    parser.add_argument(
        "--workloads", default=",".join(every), help="comma list of " + "/".join(every)
    )
    parser.add_argument(
        "--contenders",
        default=",".join(ALL),
        help="comma list of " + "/".join(ALL) + " (the last three: start-up references)",
    )
    parser.add_argument("--sandbox", type=Path, default=SANDBOX_EXE, help="sandbox executable")
    parser.add_argument("--out", type=Path, help="output directory (default benchmarks/results)")
    parser.add_argument(
        "--loader-settings",
        action="store_true",
        help="time the pipeline under each target-postgres variant (results/loader.*)",
    )
    parser.add_argument(
        "--docs",
        action="store_true",
        help="only regenerate docs/performance.md and the results' markdown from --out",
    )
    args = parser.parse_args(argv)
    args.groups = [g for g in args.workloads.split(",") if g]
    args.keys = [k for k in args.contenders.split(",") if k]
    if unknown := ({*args.groups} - {*every}) | ({*args.keys} - {*ALL}):
        parser.error(f"unknown workload or contender: {', '.join(sorted(unknown))}")
    if args.quick:
        args.rounds = 1
    if args.out is None:
        args.out = WORK / "quick" if args.quick else RESULTS
    return args


def git(*cmd: str) -> str:
    """Return the output of a git command in the repository."""
    return subprocess.run(
        ["git", *cmd], cwd=REPO, capture_output=True, text=True, check=False
    ).stdout.strip()


def meta(args: argparse.Namespace) -> dict[str, Any]:
    """Return the context of this run."""
    dirty = "+dirty" if git("status", "--porcelain", "--untracked-files=no") else ""
    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": (git("rev-parse", "--short", "HEAD") or "unknown") + dirty,
        "cpus": os.cpu_count(),
        "load_average_before": [round(load, 2) for load in os.getloadavg()],
        "machine": platform.platform(),
        "python": platform.python_version(),
        "singer_sdk": metadata.version("singer-sdk"),
        "quick": args.quick,
        "rounds": args.rounds,
        "contenders": args.keys,
    }


def progress(run: Run) -> None:
    """Print one finished run."""
    verdict = "ok" if not run.error else "FAILED " + run.error.splitlines()[0][:200]
    bound = " server-bound" if run.server_bound else ""
    print(
        f"  round {run.round + 1} {run.contender:<13} wall {run.wall_s:7.2f} s"
        f"  CPU {run.cpu_s:7.2f} s  server {run.server_cpu_s:6.2f} s{bound}"
        f"  {run.peak_rss_mb:6.1f} MB  {verdict}",
        flush=True,
    )


def note(line: str) -> None:
    """Print one finished pipeline run."""
    print(f"  {line}", flush=True)


def measure(args: argparse.Namespace) -> dict[str, Any]:
    """Run every workload and return the results."""
    results: dict[str, Any] = {"meta": meta(args), "workloads": {}}
    for workload in plan(args.groups, args.keys, quick=args.quick, rounds=args.rounds):
        print(
            f"{workload.title}: 4 x {workload.per_stream:,} records,"
            f" {workload.latency_ms} ms latency, {workload.rounds} round(s)",
            flush=True,
        )
        runs = run_rounds(workload, args.sandbox, args.work, progress)
        results["workloads"][workload.key] = summarize(workload, runs)
    if "backfill" in args.groups:
        print(
            "Backfill: max_parallel_requests 1, 4, 8, 16, rate-limited, then its targets",
            flush=True,
        )
        results["backfill"] = backfill.measure(
            args.sandbox, args.work, quick=args.quick, progress=progress
        )
    if "pipeline" in args.groups:
        print("Pipeline: meltano run tap-analytics target-postgres", flush=True)
        per_stream = 500 if args.quick else PIPELINE_PER_STREAM
        try:
            results["pipeline"] = pipeline.measure(
                (pipeline.SHIPPED,),
                per_stream,
                rounds=1,
                sandbox_exe=args.sandbox,
                work=args.work,
                progress=note,
                alone=True,
            )
        except pipeline.PipelineSkippedError as skipped:
            print(f"  skipped: {skipped}", flush=True)
            results["pipeline"] = {"skipped": str(skipped)}
    return results


def failures(results: dict[str, Any]) -> list[str]:
    """Return 'workload/contender' for every contender that failed."""
    failed = [
        f"{key}/{name}"
        for key, workload in results["workloads"].items()
        for name, found in workload["contenders"].items()
        if not found["ok"]
    ]
    failed += [
        f"backfill/{name}"
        for name, found in {
            **results.get("backfill", {}).get("runs", {}),
            "rate-limited": results.get("backfill", {}).get("rate_limited", {"ok": True}),
            **{
                f"target-{name}": found
                for name, found in results.get("backfill", {}).get("targets", {}).items()
            },
        }.items()
        if not found["ok"]
    ]
    ran = results.get("pipeline", {})
    for name, found in {**ran.get("alone", {}), **ran.get("variants", {})}.items():
        if not found["ok"]:
            failed.append(f"pipeline/{name}")
    return failed


def write(out: Path, name: str, results: dict[str, Any], markdown: str) -> None:
    """Write name.json and name.md into out."""
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps(results, indent=2) + "\n")
    (out / f"{name}.md").write_text(markdown)
    print(f"\n{markdown}\nwritten to {out}/{name}.{{json,md}}")


def load(path: Path) -> dict[str, Any] | None:
    """Return a results file, or None if there is none."""
    return json.loads(path.read_text()) if path.exists() else None


def write_docs(out: Path) -> int:
    """Regenerate docs/performance.md, and the markdown next to each results file, from out."""
    results = load(out / "latest.json")
    if results is None:
        print(f"no {out / 'latest.json'}: run the benchmark first", file=sys.stderr)
        return 1
    loader = load(out / "loader.json")
    (out / "latest.md").write_text(render(results))
    if loader is not None:
        (out / "loader.md").write_text(render_loader(loader))
    DOCS.parent.mkdir(parents=True, exist_ok=True)
    DOCS.write_text(render_docs(results, loader))
    print(f"wrote {DOCS} and the markdown in {out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Measure, write the reports, and fail if any contender failed."""
    args = parse_args(argv)
    if args.docs:
        return write_docs(args.out)
    WORK.mkdir(parents=True, exist_ok=True)
    # Each run's own directory: a second run at the same time must not share its files.
    args.work = Path(tempfile.mkdtemp(prefix="run-", dir=WORK))
    if args.loader_settings:
        per_stream = 500 if args.quick else PIPELINE_PER_STREAM
        print("Loader settings: meltano run tap-analytics target-postgres", flush=True)
        loader = pipeline.measure(
            pipeline.VARIANTS,
            per_stream,
            rounds=args.rounds,
            sandbox_exe=args.sandbox,
            work=args.work,
            progress=note,
            alone=False,
        )
        loader["meta"] = meta(args)
        write(args.out, "loader", loader, render_loader(loader))
        failed = [name for name, found in loader["variants"].items() if not found["ok"]]
    else:
        results = measure(args)
        write(args.out, "latest", results, render(results))
        failed = failures(results)
    if failed:
        print(f"FAILED: {', '.join(failed)}; logs and output in {args.work}", file=sys.stderr)
        return 1
    shutil.rmtree(args.work)
    return 0


if __name__ == "__main__":
    sys.exit(main())
