"""--background: the sandbox in a process of its own, returned from once it listens."""

from __future__ import annotations

import os
import subprocess
import sys
import typing as t

if t.TYPE_CHECKING:
    from pathlib import Path

ANNOUNCEMENT = "sandbox listening on "
DETACHED = "--detached"  # tells the sandbox process it was started by --background


def start(argv: list[str]) -> int:
    """Start the sandbox with `argv`; return 0 once it listens, else 1 with its one-line reason."""
    command = [sys.executable, "-m", "tap_analytics.sandbox", *argv, DETACHED]
    # Not a session of its own: whatever stops the caller's process group stops the sandbox too.
    sandbox = subprocess.Popen(  # noqa: S603 - this interpreter, our own module
        command,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert sandbox.stdout is not None  # noqa: S101 - asked for above; tells mypy
    # The sandbox closes its end once it listens, or by exiting: no wait has a clock.
    output = sandbox.stdout.read().splitlines()
    sandbox.stdout.close()
    announced = [line for line in output if line.startswith(ANNOUNCEMENT)]
    if announced and sandbox.poll() is None:
        sys.stdout.write(f"{announced[-1]} (pid {sandbox.pid})\n")
        return 0
    code = sandbox.wait()
    reasons = [line for line in output if line.strip()]
    reason = reasons[-1] if reasons else f"the sandbox exited with code {code} before listening"
    sys.stderr.write(reason + "\n")
    return 1


def detach_output(log: Path | None) -> None:
    """Send this process's later output to `log` (default: nowhere), closing the starter's pipe."""
    sys.stdout.flush()
    sys.stderr.flush()
    target = os.open(log or os.devnull, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(target, sys.stdout.fileno())
    os.dup2(target, sys.stderr.fileno())
    os.close(target)
