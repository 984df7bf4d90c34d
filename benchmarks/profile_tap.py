"""Profile a contender on the CPU-bound workload and print its costs per record.

Usage: python benchmarks/profile_tap.py [--contender tap|tap1|stock|floor-seq|floor-threads]
[--tool cprofile|py-spy] [--per-stream N] [--latency-ms MS] [--py-spy PATH]

cprofile (default): every thread under its own profiler on the thread's CPU clock
(harness/cprofile_threads.py); prints the top functions by own and by inclusive CPU time, in
µs per record and calls per record. Instrumentation inflates small, often-called functions:
compare the total with the contender's measured CPU. py-spy: samples every thread that holds
the GIL (its CPU time in Python) at --rate Hz with no instrumentation; install it with
`pip install py-spy`. Output lands in benchmarks/.work/profile/.
"""

from __future__ import annotations

import argparse
import os
import pstats
import shutil
import subprocess
import time
from collections import Counter
from typing import TYPE_CHECKING

from harness.contenders import CONTENDERS
from harness.measure import child_env
from harness.paths import BENCH, PYTHON, REPO, SANDBOX_EXE, VENV_BIN, WORK
from harness.sandbox import Sandbox
from harness.workloads import STREAMS

if TYPE_CHECKING:
    from pathlib import Path

OUT = WORK / "profile"
TOP = 30


def parse_args() -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contender", default="tap", choices=sorted(CONTENDERS))
    parser.add_argument("--tool", default="cprofile", choices=("cprofile", "py-spy"))
    parser.add_argument("--per-stream", type=int, default=15_000)
    parser.add_argument("--latency-ms", type=int, default=0, help="sandbox latency a request")
    parser.add_argument("--rate", type=int, default=500, help="py-spy samples a second")
    parser.add_argument("--py-spy", default=shutil.which("py-spy") or str(VENV_BIN / "py-spy"))
    return parser.parse_args()


def profile_command(args: argparse.Namespace, cmd: list[str]) -> list[str]:
    """Wrap the contender's command in the profiler (scripts run by this Python)."""
    if cmd[0] != str(PYTHON):
        cmd = [str(PYTHON), *cmd]  # a console script is a Python file
    if args.tool == "cprofile":
        runner = str(BENCH / "harness" / "cprofile_threads.py")
        return [cmd[0], runner, str(OUT / "profile.pstats"), *cmd[1:]]
    raw = str(OUT / "profile.collapsed")
    spy = [args.py_spy, "record", "--gil", "--function", "-r", str(args.rate)]
    return [*spy, "-f", "raw", "-o", raw, "--", *cmd]


def short(where: str) -> str:
    """Shorten a source path to package/module.py."""
    return where.rsplit("site-packages/", maxsplit=1)[-1].replace(f"{REPO}/", "")


def pstats_top(path: Path, records: int) -> None:
    """Print cProfile's top functions by own and inclusive CPU, a record."""
    stats = pstats.Stats(str(path))
    table = stats.stats  # type: ignore[attr-defined]
    total = sum(entry[2] for entry in table.values())
    print(f"profiled CPU: {total:.2f} s = {total / records * 1e6:.1f} µs a record")
    for title, column in (("own", 2), ("inclusive", 3)):
        print(f"\n== top {TOP} by {title} CPU time ==")
        print(f"{'µs/record':>10} {'calls/record':>12}  function")
        ranked = sorted(table.items(), key=lambda item: item[1][column], reverse=True)
        for (file, line, name), entry in ranked[:TOP]:
            per_record = entry[column] / records * 1e6
            calls = entry[1] / records
            print(f"{per_record:10.2f} {calls:12.3f}  {name} ({short(file)}:{line})")


def collapsed_top(path: Path, records: int, rate: int) -> None:
    """Print own and inclusive CPU from py-spy's collapsed stacks, a record."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = [short(frame) for frame in stack.split(";")]
        own[frames[-1]] += int(count)
        for frame in set(frames):
            inclusive[frame] += int(count)
    total = sum(own.values())
    print(f"sampled CPU: {total / rate:.2f} s = {total / rate / records * 1e6:.1f} µs a record")
    for title, counter in (("own", own), ("inclusive", inclusive)):
        print(f"\n== top {TOP} by {title} CPU time ==")
        for frame, samples in counter.most_common(TOP):
            print(f"{samples / rate / records * 1e6:8.2f} µs/record  {frame}")


def main() -> None:
    """Start a sandbox, run the contender under the profiler, print the hotspots."""
    args = parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    counts = dict.fromkeys(STREAMS, args.per_stream)
    records = max(args.per_stream * len(STREAMS), 1)  # --per-stream 0: "a record" is the run
    with Sandbox(SANDBOX_EXE, counts, args.latency_ms, OUT) as sandbox:
        cmd = profile_command(args, CONTENDERS[args.contender].command(sandbox.base_url, OUT))
        with (OUT / "stdout").open("wb") as out, (OUT / "stderr").open("wb") as err:
            start = time.perf_counter()
            proc = subprocess.Popen(cmd, stdout=out, stderr=err, cwd=REPO, env=child_env())
            _, status, usage = os.wait4(proc.pid, 0)
            wall = time.perf_counter() - start
    if status:
        msg = f"the profiled run failed: see {OUT / 'stderr'}"
        raise SystemExit(msg)
    cpu = usage.ru_utime + usage.ru_stime
    print(
        f"{args.contender}, 4 x {args.per_stream:,} records under {args.tool}: wall {wall:.2f} s,"
    )
    print(f"CPU {cpu:.2f} s = {cpu / records * 1e6:.1f} µs a record (profiler overhead included)")
    if args.tool == "cprofile":
        pstats_top(OUT / "profile.pstats", records)
    else:
        collapsed_top(OUT / "profile.collapsed", records, args.rate)


if __name__ == "__main__":
    main()
