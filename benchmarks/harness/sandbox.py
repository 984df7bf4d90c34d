"""The sandbox server in its own process, and the CPU seconds it spends."""

from __future__ import annotations

import subprocess
import time
from typing import TYPE_CHECKING, Self

import psutil

if TYPE_CHECKING:
    from pathlib import Path
    from types import TracebackType

START_TIMEOUT_S = 120.0  # generating 4 x 200,000 records takes a while on a busy machine
CLIENT_ID = "sandbox-client"
CLIENT_SECRET = "sandbox-secret"  # noqa: S105
NO_RECORDS_OF = ("resource",)  # the sandbox's fifth resource, which no contender reads


class SandboxError(RuntimeError):
    """The sandbox did not start."""


class Sandbox:
    """A running `tap-analytics-sandbox` process; use as a context manager."""

    def __init__(
        self,
        exe: Path,
        counts: dict[str, int],
        latency_ms: int,
        workdir: Path,
        extra: tuple[str, ...] = (),
    ) -> None:
        """Remember how to start the server, with `extra` arguments (a rate limit)."""
        self.exe = exe
        self.extra = extra
        self.counts = counts
        self.latency_ms = latency_ms
        self.workdir = workdir
        self.log = workdir / "sandbox.log"
        self.port_file = workdir / "sandbox.url"
        self.base_url = ""
        self._proc: subprocess.Popen[bytes] | None = None
        self._process: psutil.Process | None = None

    def command(self) -> list[str]:
        """Return the sandbox command line."""
        cmd = [str(self.exe), "--host", "127.0.0.1", "--port", "0"]
        cmd += ["--port-file", str(self.port_file)]
        for stream, count in self.counts.items():
            cmd += [f"--{stream}", str(count)]
        for stream in NO_RECORDS_OF:
            cmd += [f"--{stream}", "0"]
        if self.latency_ms:
            cmd += ["--latency-ms", str(self.latency_ms)]
        return [*cmd, *self.extra]

    def __enter__(self) -> Self:
        """Start the server and wait until it has written its URL (after generating data)."""
        self.log.parent.mkdir(parents=True, exist_ok=True)
        self.port_file.unlink(missing_ok=True)
        with self.log.open("wb") as log:
            self._proc = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT)
        self._process = psutil.Process(self._proc.pid)
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline and self._proc.poll() is None:
            if self.port_file.exists():
                self.base_url = self.port_file.read_text().strip().rstrip("/")
                return self
            time.sleep(0.05)
        self.stop()
        msg = f"sandbox did not start: {' '.join(self.command())}\n{self.log.read_text()[-2000:]}"
        raise SandboxError(msg)

    def cpu_seconds(self) -> float:
        """Return the user+system CPU seconds the server process has used so far."""
        assert self._process is not None  # noqa: S101 - only called inside the context
        times = self._process.cpu_times()
        return float(times.user + times.system)

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
