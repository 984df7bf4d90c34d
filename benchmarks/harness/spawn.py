"""Run a command, then write its wall time and rusage as JSON: python -S spawn.py RESULT CMD...

Linux carries a process's peak RSS across fork and exec, so a contender forked straight from
the harness (tens of MB) would report at least the harness's peak RSS. Forked from this small
process (about 9 MB), it reports its own. Exits with the command's exit code.
"""

import json
import os
import sys
import time


def main() -> int:
    """Fork, exec the command, wait for it, write the result file."""
    result, cmd = sys.argv[1], sys.argv[2:]
    start = time.perf_counter()
    pid = os.fork()
    if pid == 0:
        try:
            os.execvp(cmd[0], cmd)  # noqa: S606 - the harness's own command line
        finally:
            os._exit(127)
    _, status, usage = os.wait4(pid, 0)
    wall = time.perf_counter() - start
    code = os.waitstatus_to_exitcode(status)
    with open(result, "w") as out:  # noqa: PTH123 - pathlib is not worth its import here
        json.dump(
            {
                "wall_s": wall,
                "user_s": usage.ru_utime,
                "sys_s": usage.ru_stime,
                "peak_rss_mb": usage.ru_maxrss / 1024,
                "exit_code": code,
            },
            out,
        )
    return code if code >= 0 else 128 - code


if __name__ == "__main__":
    sys.exit(main())
