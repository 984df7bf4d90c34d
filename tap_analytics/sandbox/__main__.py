"""Command line: tap-analytics-sandbox serves the sandbox API until SIGTERM or SIGINT."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tap_analytics.sandbox import background
from tap_analytics.sandbox.generate import RESOURCES
from tap_analytics.sandbox.server import SandboxServer

if TYPE_CHECKING:
    from types import FrameType


CONTROL_HELP = """\
control endpoints (JSON bodies; the base URL is printed at start):
  GET    /_sandbox/counts            records per resource
  GET    /_sandbox/records/RESOURCE  {"data": [every record as served, in API order]}
  POST   /_sandbox/update            {"resource": R, "count": N} or {"resource": R, "ids": [..]}:
                                     give records a new updated_at (the latest) and a new value
  POST   /_sandbox/add               {"resource": R, "count": N}: N new records, newest updated_at
  POST   /_sandbox/revoke            revoke every access token issued so far
  GET    /_sandbox/requests          the log of token and data requests
  DELETE /_sandbox/requests          clear that log
  GET    /_sandbox/config            the run-time settings:
  POST   /_sandbox/config            change some: latency_ms, token_ttl, rate_limit, rate_window,
                                     one_token_per_client, echo_credentials, field_overrides
  GET    /_sandbox/faults            the fault rules with their matched/fired counters
  POST   /_sandbox/faults            add a rule {"kind": K, ...} or rules {"faults": [...]}
  DELETE /_sandbox/faults            remove every rule
fault rules fire in the order added; keys: kind, path (default: every /v1/ path), times (1;
  -1 = always), skip (0), every (0; N = every Nth match), status (503; raw 200), retry_after,
  headers ({name: value}), delay (2.0), field ("id"), body, content_type, paging, size
  on arrival: status, drop, slow (`delay` s), revoke (then answer), html, garbage, hang, trickle
    (body a byte per `delay` s), trickle_head (head too), raw (as given; {token}, {authorization})
  on a good answer: empty (no records, same position), no_data, data_not_list, missing_field
    (no `field` in the first record), repeat_cursor, truncated, unsorted (newest first), paging
    (served instead; "{after}", "{link}" filled in), rewind (to the page's start), gzip (`size`)
field_overrides: [{"resource": R, "name": F, "value": V, "since": RFC 3339 (now), "ids": [...],
  "raw": true}]: F = V from `since` on (update and add put records past it), or on `ids`
resources: customers, sessions, events, campaigns, resource (customer-shaped, for declared ones)
"""


def json_object(text: str) -> dict[str, Any]:
    """Parse a JSON object given on the command line."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        msg = f"not JSON: {error}"
        raise argparse.ArgumentTypeError(msg) from error
    if not isinstance(value, dict):
        msg = f"not a JSON object: {text}"
        raise argparse.ArgumentTypeError(msg)
    return value


def build_parser() -> argparse.ArgumentParser:
    """Return the command line parser; its epilog documents the control endpoints."""
    parser = argparse.ArgumentParser(
        prog="tap-analytics-sandbox",
        usage="%(prog)s [options]",
        description="Serve the sandbox Analytics API v1 until SIGTERM or SIGINT.",
        epilog=CONTROL_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,  # --background is taken out of the arguments by its exact name
    )
    add = parser.add_argument
    add("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    add("--port", type=int, default=0, help="0 (the default) picks a free port")
    add("--port-file", type=Path, metavar="FILE", help="write the base URL to FILE once listening")
    add("--pid-file", type=Path, metavar="FILE", help="write the process id to FILE")
    add("--background", action="store_true",
        help="serve from a process of its own; return once it listens (exit 0), or exit 1 "
        "with the reason it cannot")  # fmt: skip
    add("--log", type=Path, metavar="FILE", help="with --background: its output (default: none)")
    add(background.DETACHED, action="store_true", help=argparse.SUPPRESS)
    add("--records", type=int, metavar="N", help="records of every resource")
    for resource in RESOURCES:
        add(f"--{resource}", type=int, metavar="N", help=f"records of {resource}")
    add("--seed", type=int, default=1, help="same seed, same records")
    add("--data-dir", type=Path, metavar="DIR", help="keep updated and added records")
    add("--client-id", default="sandbox-client", metavar="ID", help="(sandbox-client)")
    add("--client-secret", default="sandbox-secret", metavar="SECRET", help="(sandbox-secret)")
    add("--token-ttl", type=int, default=3600, metavar="S", help="expires_in seconds (3600)")
    add("--latency-ms", type=float, default=0, metavar="MS", help="delay of every data request")
    add("--rate-limit", type=int, default=1_000_000, metavar="N", help="requests per window")
    add("--rate-window", type=float, default=60.0, metavar="S", help="window seconds (60)")
    add("--one-token-per-client", action="store_true", help="a new token revokes older ones")
    add("--echo-credentials", action="store_true", help="error answers quote the credentials")
    add("--field-override", type=json_object, action="append", metavar="JSON", default=[],
        help="one field_overrides object (repeatable)")  # fmt: skip
    return parser


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
    """Serve until SIGTERM or SIGINT, then exit 0; exit 1 with a reason if it cannot listen."""
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else argv
    arguments = parser.parse_args(argv)
    if arguments.log is not None and not arguments.background | arguments.detached:
        parser.error("--log is the output of a --background sandbox: add --background")
    if arguments.background:
        return background.start([argument for argument in argv if argument != "--background"])
    stopping = threading.Event()

    def request_stop(_signal: int, _frame: FrameType | None) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    try:
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
            one_token_per_client=arguments.one_token_per_client,
            echo_credentials=arguments.echo_credentials,
            field_overrides=arguments.field_override,
            data_dir=arguments.data_dir,
        )
    except (TypeError, ValueError) as error:
        parser.error(str(error))
    server.app.warm()  # generate data before announcing, so timings never include it
    try:
        server.start()
    except OSError as error:
        sys.stderr.write(
            f"tap-analytics-sandbox: cannot listen on {arguments.host}:{arguments.port} "
            f"({error.strerror or error}); give another --port, or 0 for a free one\n"
        )
        return 1
    try:
        if arguments.pid_file is not None:
            arguments.pid_file.write_text(f"{os.getpid()}\n", encoding="utf-8")
        if arguments.port_file is not None:
            write_port_file(arguments.port_file, server.base_url)
        sys.stdout.write(f"{background.ANNOUNCEMENT}{server.base_url}\n")
        sys.stdout.flush()
        if arguments.detached:
            background.detach_output(arguments.log)
        while not stopping.wait(0.5):
            pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
