"""Command line: tap-analytics-sandbox serves the sandbox API until SIGTERM or SIGINT."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from tap_analytics.sandbox.generate import RESOURCES
from tap_analytics.sandbox.server import SandboxServer

if TYPE_CHECKING:
    from types import FrameType


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(
        prog="tap-analytics-sandbox", description="Serve the sandbox Analytics API v1."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--records", type=int, help="records of every resource")
    for resource in RESOURCES:
        parser.add_argument(f"--{resource}", type=int, help=f"records of {resource}")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--client-id", default="sandbox-client")
    parser.add_argument("--client-secret", default="sandbox-secret")
    parser.add_argument("--token-ttl", type=int, default=3600, help="expires_in seconds")
    parser.add_argument("--latency-ms", type=float, default=0)
    parser.add_argument("--rate-limit", type=int, default=1_000_000, help="requests per window")
    parser.add_argument("--rate-window", type=float, default=60.0, help="window seconds")
    parser.add_argument("--port-file", type=Path, help="write the base URL to this file")
    return parser.parse_args(argv)


def record_counts(arguments: argparse.Namespace) -> dict[str, int]:
    """Return per-resource counts: --records for all, overridden by per-resource options."""
    counts = {}
    for resource in RESOURCES:
        count = getattr(arguments, resource)
        if count is None:
            count = arguments.records
        if count is not None:
            counts[resource] = count
    return counts


def write_port_file(path: Path, base_url: str) -> None:
    """Write the base URL atomically, so a reader never sees half of it."""
    partial = path.with_name(path.name + ".partial")
    partial.write_text(base_url + "\n", encoding="utf-8")
    partial.replace(path)


def main(argv: list[str] | None = None) -> int:
    """Serve until SIGTERM or SIGINT, then exit 0."""
    arguments = parse_arguments(argv)
    stopping = threading.Event()

    def request_stop(_signal: int, _frame: FrameType | None) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    server = SandboxServer(
        counts=record_counts(arguments),
        seed=arguments.seed,
        client_id=arguments.client_id,
        client_secret=arguments.client_secret,
        token_ttl=arguments.token_ttl,
        latency_ms=arguments.latency_ms,
        host=arguments.host,
        port=arguments.port,
        rate_limit=arguments.rate_limit,
        rate_window=arguments.rate_window,
    )
    server.app.warm()  # generate data before announcing, so timings never include it
    server.start()
    try:
        if arguments.port_file is not None:
            write_port_file(arguments.port_file, server.base_url)
        sys.stdout.write(f"sandbox listening on {server.base_url}\n")
        sys.stdout.flush()
        while not stopping.wait(0.5):
            pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
