"""Run a Python script under cProfile in every thread: python cprofile_threads.py OUT SCRIPT ARGS.

cProfile alone sees only the main thread; taps that sync streams in worker threads need this.
Each thread's profiler counts that thread's CPU time (time.thread_time), so time spent waiting
for the GIL, a lock or the network is not charged to the function that waited.
"""

from __future__ import annotations

import atexit
import cProfile
import pstats
import runpy
import sys
import threading
import time

profiles: list[cProfile.Profile] = []
original_run = threading.Thread.run


def new_profile() -> cProfile.Profile:
    """Return a profiler on this thread's CPU clock, remembered for the dump."""
    profile = cProfile.Profile(timer=time.thread_time)
    profiles.append(profile)
    return profile


def profiled_run(self: threading.Thread) -> None:
    """Run a thread's target under its own profiler."""
    new_profile().runcall(original_run, self)


def dump(out: str) -> None:
    """Merge every thread's stats into one file."""
    stats = pstats.Stats(profiles[0])
    for profile in profiles[1:]:
        stats.add(profile)
    stats.dump_stats(out)


def main() -> None:
    """Profile the script in every thread and dump the merged stats at exit."""
    out, script = sys.argv[1], sys.argv[2]
    sys.argv = sys.argv[2:]
    threading.Thread.run = profiled_run  # type: ignore[method-assign]
    atexit.register(dump, out)  # the tap leaves through sys.exit and may freeze the gc
    new_profile().runcall(runpy.run_path, script, run_name="__main__")


if __name__ == "__main__":
    main()
