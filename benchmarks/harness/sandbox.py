"""Start and stop the sandbox server as a separate process."""

from __future__ import annotations

import re
import subprocess
import time
from typing import TYPE_CHECKING, Self

if TYPE_CHECKING:
    from pathlib import Path
    from types import TracebackType

LISTENING = re.compile(r"listening on (https?://\S+)")
START_TIMEOUT_S = 30.0
CLIENT_ID = "sandbox-client"
CLIENT_SECRET = "sandbox-secret"  # noqa: S105


class SandboxError(RuntimeError):
    """The sandbox did not start."""


class Sandbox:
    """A running sandbox server; use as a context manager."""

    def __init__(self, exe: Path, counts: dict[str, int], latency_ms: int, log: Path) -> None:
        """Remember how to start the server."""
        self.exe = exe
        self.counts = counts
        self.latency_ms = latency_ms
        self.log = log
        self.base_url = ""
        self._proc: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        """Return the sandbox command line."""
        cmd = [str(self.exe), "--host", "127.0.0.1", "--port", "0"]
        for stream, count in self.counts.items():
            cmd += [f"--{stream}", str(count)]
        if self.latency_ms:
            cmd += ["--latency-ms", str(self.latency_ms)]
        return cmd

    def __enter__(self) -> Self:
        """Start the server and wait for its listening line."""
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("wb") as log:
            self._proc = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT)
        self.base_url = self._wait_for_url()
        return self

    def _wait_for_url(self) -> str:
        """Poll the log for the listening line."""
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if match := LISTENING.search(self.log.read_text(errors="replace")):
                return match.group(1).rstrip("/")
            if self._proc is not None and self._proc.poll() is not None:
                break
            time.sleep(0.05)
        self.stop()
        msg = f"sandbox did not start: {' '.join(self.command())}\n{self.log.read_text()[-2000:]}"
        raise SandboxError(msg)

    def stop(self) -> None:
        """Terminate the server."""
        if self._proc is None or self._proc.poll() is not None:
            return
        self._proc.terminate()
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop the server."""
        self.stop()
