"""Profile a contender on the CPU-bound workload and print its hotspots.

Usage: python benchmarks/profile_tap.py [--contender tap|stock|floor|tap1] [--tool py-spy|cprofile]
[--gil] [--per-stream N] [--latency-ms MS]

py-spy samples every thread (--gil: only the one holding the GIL, i.e. CPU time); cProfile
profiles every thread (harness/cprofile_threads.py), and tap-analytics then runs with
max_parallel_streams 1 so that GIL waits do not inflate the times. Output lands in
benchmarks/.work/profile/.
"""

from __future__ import annotations

import argparse
import json
import pstats
import subprocess
from collections import Counter
from pathlib import Path

from harness.contenders import ALL
from harness.paths import BENCH, PYTHON, REPO, SANDBOX_EXE, VENV_BIN, WORK
from harness.sandbox import Sandbox
from harness.workloads import STREAMS

OUT = WORK / "profile"
TOP = 25


def parse_args() -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contender", default="tap", choices=sorted(ALL))
    parser.add_argument("--tool", default="py-spy", choices=("py-spy", "cprofile"))
    parser.add_argument("--per-stream", type=int, default=15_000)
    parser.add_argument("--latency-ms", type=int, default=0, help="sandbox latency per request")
    parser.add_argument("--rate", type=int, default=250, help="py-spy samples per second")
    parser.add_argument("--sandbox", type=Path, default=SANDBOX_EXE)
    parser.add_argument(
        "--gil", action="store_true", help="py-spy: sample only the thread holding the GIL"
    )
    return parser.parse_args()


def contender_command(args: argparse.Namespace, base_url: str) -> list[str]:
    """Return the contender's command, sequential under cProfile."""
    cmd = ALL[args.contender].command(base_url, OUT)
    if args.tool == "cprofile" and args.contender == "tap":
        config = Path(cmd[-1])
        settings = json.loads(config.read_text())
        config.write_text(json.dumps({**settings, "max_parallel_streams": 1}))
    return cmd if cmd[0] == str(PYTHON) else [str(PYTHON), *cmd]


def profile_command(args: argparse.Namespace, cmd: list[str]) -> list[str]:
    """Wrap the contender's command in the profiler."""
    if args.tool == "cprofile":
        runner = str(BENCH / "harness" / "cprofile_threads.py")
        return [cmd[0], runner, str(OUT / "profile.pstats"), *cmd[1:]]
    raw = str(OUT / "profile.collapsed")
    rate = str(args.rate)
    spy = [str(VENV_BIN / "py-spy"), "record", "--function", "-r", rate, "-f", "raw", "-o", raw]
    return [*spy, *(["--gil"] if args.gil else []), "--", *cmd]


def label(frame: str) -> str:
    """Shorten a py-spy frame 'func (path:line)' to 'func (package/module.py:line)'."""
    name, _, where = frame.partition(" (")
    if not name.strip():
        return "(no Python frame)"
    where = where.rstrip(")").split("site-packages/")[-1].replace(f"{REPO}/", "")
    return f"{name} ({where})"


def collapsed_top(path: Path) -> None:
    """Print self and inclusive sample shares from py-spy's collapsed stacks."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = [label(frame) for frame in stack.split(";")]
        samples = int(count)
        total += samples
        own[frames[-1]] += samples
        for frame in set(frames):
            inclusive[frame] += samples
    for title, counter in (("self", own), ("inclusive", inclusive)):
        print(f"\n== top {TOP} by {title} time ({total} samples) ==")
        for frame, samples in counter.most_common(TOP):
            print(f"{100 * samples / total:6.1f} %  {frame}")


def pstats_top(path: Path) -> None:
    """Print cProfile's top functions by own and cumulative time."""
    stats = pstats.Stats(str(path))
    stats.sort_stats("tottime").print_stats(TOP)
    stats.sort_stats("cumulative").print_stats(TOP)


def main() -> None:
    """Start a sandbox, run the contender under the profiler, print the hotspots."""
    args = parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    counts = dict.fromkeys(STREAMS, args.per_stream)
    with Sandbox(args.sandbox, counts, args.latency_ms, OUT / "sandbox.log") as sandbox:
        cmd = profile_command(args, contender_command(args, sandbox.base_url))
        with (OUT / "stdout").open("wb") as out, (OUT / "stderr").open("wb") as err:
            subprocess.run(cmd, stdout=out, stderr=err, cwd=REPO, check=True)
    if args.tool == "cprofile":
        pstats_top(OUT / "profile.pstats")
    else:
        collapsed_top(OUT / "profile.collapsed")


if __name__ == "__main__":
    main()
