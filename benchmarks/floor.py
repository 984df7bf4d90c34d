"""The floor: the fastest honest extraction loop over the Analytics API, to measure taps against.

Usage: python benchmarks/floor.py --config CONFIG.json [--threads]

CONFIG.json holds client_id, client_secret, base_url and, optionally, token_url and page_size,
as the tap's config does.

Does what a tap must do and nothing more: one OAuth token (a new one on 401), every page of
every stream through cursor paging over one keep-alive requests.Session, each page decoded with
msgspec (the tap's JSON library) and its records written as Singer RECORD lines with
`time_extracted`, a STATE line with every stream's bookmark (the last `updated_at` written)
every 1,000 records and at the end of each stream, and a SCHEMA line per stream; bytes to
stdout. No schema checks, no logging, no retries beyond the token. `--threads` syncs each
stream in its own thread; by default streams go one after another. At the end, a one-line
JSON summary (records and pages per stream) goes to stderr for the harness.
"""

from __future__ import annotations

import sys
import threading
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import msgspec
import requests

STREAMS = ("customers", "sessions", "events", "campaigns")
PAGE_SIZE = 100
STATE_EVERY = 1000  # records between STATE lines, as the tap writes them
MAX_TIED = 1000  # ids kept of the records at the bookmark, as the tap keeps them
TIMEOUT = 60
UNAUTHORIZED = 401
decode = msgspec.json.decode
encode = msgspec.json.Encoder().encode
encode_lines = msgspec.json.Encoder().encode_lines


class Client:
    """One keep-alive session with a bearer token."""

    def __init__(self, config: dict[str, Any]) -> None:
        """Open the session and fetch the first token."""
        self.config = config
        self.base_url = str(config["base_url"]).rstrip("/")
        self.session = requests.Session()
        self.session.trust_env = False  # no proxy lookup on every request
        self.lock = threading.Lock()
        self.headers = {"Authorization": "Bearer " + self.fetch_token()}

    def fetch_token(self) -> str:
        """POST the client credentials and return the access token."""
        body = {
            "grant_type": "client_credentials",
            "client_id": self.config["client_id"],
            "client_secret": self.config["client_secret"],
        }
        url = self.config.get("token_url") or f"{self.base_url}/oauth/v1/token"
        response = self.session.post(url, data=body, timeout=TIMEOUT)
        response.raise_for_status()
        return str(decode(response.content)["access_token"])

    def get_page(self, url: str) -> dict[str, Any]:
        """GET and decode one page, fetching a new token once on 401."""
        headers = self.headers
        response = self.session.get(url, headers=headers, timeout=TIMEOUT)
        if response.status_code == UNAUTHORIZED:
            with self.lock:
                if headers is self.headers:  # another thread may have renewed it already
                    self.headers = {"Authorization": "Bearer " + self.fetch_token()}
            response = self.session.get(url, headers=self.headers, timeout=TIMEOUT)
        response.raise_for_status()
        return decode(response.content)  # type: ignore[no-any-return]


class Output:
    """Singer lines to stdout as bytes; one lock so threads never interleave lines."""

    def __init__(self) -> None:
        """Write to this process's stdout."""
        self.out = sys.stdout.buffer
        self.lock = threading.Lock()
        self.bookmarks: dict[str, dict[str, Any]] = {}

    def schema(self, stream: str) -> None:
        """Write the stream's SCHEMA line (a minimal schema: the floor checks nothing)."""
        message = {
            "type": "SCHEMA",
            "stream": stream,
            "schema": {"type": "object"},
            "key_properties": ["id"],
            "bookmark_properties": ["updated_at"],
        }
        with self.lock:
            self.out.write(encode(message) + b"\n")

    def records(self, lines: bytes) -> None:
        """Write a page's RECORD lines."""
        with self.lock:
            self.out.write(lines)

    def state(self, stream: str, bookmark: str | None, tied: list[str] | None) -> None:
        """Move a stream's bookmark, write STATE and flush, so state never leads data."""
        with self.lock:
            if bookmark is not None:
                self.bookmarks[stream] = {
                    "replication_key": "updated_at",
                    "replication_key_value": bookmark,
                }
                if tied is not None:  # as the tap keeps them: skipped by the next run
                    self.bookmarks[stream]["keys_at_bookmark"] = tied
            self.out.write(encode({"type": "STATE", "value": {"bookmarks": self.bookmarks}}))
            self.out.write(b"\n")
            self.out.flush()


def next_cursor(page: dict[str, Any]) -> str | None:
    """Return the next cursor; a missing one (any of the three last-page shapes) ends."""
    paging = page.get("paging") or {}
    return (paging.get("next") or {}).get("after")


def sync_stream(client: Client, output: Output, stream: str) -> tuple[int, int]:
    """Write every record of one stream; return (records, pages)."""
    output.schema(stream)
    first = f"{client.base_url}/v1/{stream}?limit={client.config.get('page_size', PAGE_SIZE)}"
    url = first
    records = pages = since_state = 0
    bookmark: str | None = None
    tied: list[str] | None = []  # the ids at the bookmark; None: more than MAX_TIED
    while True:
        page = client.get_page(url)
        pages += 1
        data = page.get("data") or []
        if data:
            extracted = datetime.now(UTC).isoformat()
            output.records(
                encode_lines(
                    [
                        {
                            "type": "RECORD",
                            "stream": stream,
                            "record": r,
                            "time_extracted": extracted,
                        }
                        for r in data
                    ]
                )
            )
            # Records come sorted by (updated_at, id): the last one holds the bookmark.
            last = data[-1]["updated_at"]
            if last != bookmark:
                bookmark, tied = last, []
            tied_from = len(data) - 1
            while tied_from and data[tied_from - 1]["updated_at"] == last:
                tied_from -= 1
            if tied is not None:
                tied += [r["id"] for r in data[tied_from:]]
                tied = tied if len(tied) <= MAX_TIED else None
            records += len(data)
            since_state += len(data)
        cursor = next_cursor(page)
        if not cursor:
            output.state(stream, bookmark, tied)
            return records, pages
        if since_state >= STATE_EVERY:
            output.state(stream, bookmark, tied)
            since_state = 0
        url = f"{first}&after={quote(cursor, safe='')}"


def main(argv: list[str]) -> int:
    """Extract every stream to stdout and print a summary to stderr."""
    if len(argv) < 2 or argv[0] != "--config" or not set(argv[2:]) <= {"--threads"}:  # noqa: PLR2004
        print(__doc__.splitlines()[2], file=sys.stderr)  # the usage line
        return 2
    with open(argv[1], "rb") as config:  # noqa: PTH123 - pathlib costs an import
        client = Client(decode(config.read()))
    output = Output()
    results: dict[str, tuple[int, int]] = {}

    def sync(stream: str) -> None:
        results[stream] = sync_stream(client, output, stream)

    if "--threads" in argv:
        threads = [threading.Thread(target=sync, args=(stream,)) for stream in STREAMS]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    else:
        for stream in STREAMS:
            sync(stream)
    if len(results) != len(STREAMS):
        return 1  # a thread failed; its traceback is on stderr
    summary = {
        "records": {stream: results[stream][0] for stream in STREAMS},
        "pages": {stream: results[stream][1] for stream in STREAMS},
    }
    sys.stderr.write(encode(summary).decode() + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
