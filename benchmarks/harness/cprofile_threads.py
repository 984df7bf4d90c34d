"""Run a Python script under cProfile in every thread: python cprofile_threads.py OUT SCRIPT ARGS.

cProfile alone sees only the main thread; taps that sync streams in worker threads need this.
"""

from __future__ import annotations

import cProfile
import pstats
import runpy
import sys
import threading

profiles: list[cProfile.Profile] = []
original_run = threading.Thread.run


def profiled_run(self: threading.Thread) -> None:
    """Run a thread's target under its own profiler."""
    profile = cProfile.Profile()
    profiles.append(profile)
    profile.runcall(original_run, self)


def main() -> None:
    """Profile the script in every thread and dump the merged stats."""
    out, script = sys.argv[1], sys.argv[2]
    sys.argv = sys.argv[2:]
    threading.Thread.run = profiled_run  # type: ignore[method-assign]
    main_profile = cProfile.Profile()
    profiles.append(main_profile)
    try:
        main_profile.runcall(runpy.run_path, script, run_name="__main__")
    finally:
        stats = pstats.Stats(profiles[0])
        for profile in profiles[1:]:
            stats.add(profile)
        stats.dump_stats(out)


if __name__ == "__main__":
    main()
