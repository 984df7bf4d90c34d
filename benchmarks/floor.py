"""The floor: a bare fetch-parse-write loop over the Analytics API, no schema work, no state.

Usage: python benchmarks/floor.py --base-url URL --client-id ID --client-secret SECRET

Writes one Singer RECORD line per record to stdout and, at the end, a one-line JSON
summary (records and pages per stream) to stderr for the harness.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import IO, Any

import requests

STREAMS = ("customers", "sessions", "events", "campaigns")
PAGE_SIZE = 100
RETRY_STATUSES = frozenset({429, 500, 502, 503})
MAX_ATTEMPTS = 8
TIMEOUT = 60


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--client-id", required=True)
    parser.add_argument("--client-secret", required=True)
    return parser.parse_args(argv)


class Client:
    """One keep-alive session with a bearer token."""

    def __init__(self, args: argparse.Namespace) -> None:
        """Open the session and fetch the first token."""
        self.args = args
        self.base_url = args.base_url.rstrip("/")
        self.session = requests.Session()
        self.session.trust_env = False
        self.headers = {"Authorization": "Bearer " + self.fetch_token()}

    def fetch_token(self) -> str:
        """POST the client credentials and return the access token."""
        body = {
            "grant_type": "client_credentials",
            "client_id": self.args.client_id,
            "client_secret": self.args.client_secret,
        }
        response = self.send("POST", f"{self.base_url}/oauth/v1/token", data=body)
        response.raise_for_status()
        return str(response.json()["access_token"])

    def send(self, method: str, url: str, **kwargs: Any) -> requests.Response:  # noqa: ANN401
        """Send a request, sleeping through 429 and 5xx as the server asks; do not raise."""
        for attempt in range(MAX_ATTEMPTS):
            response = self.session.request(method, url, timeout=TIMEOUT, **kwargs)
            if response.status_code not in RETRY_STATUSES:
                break
            time.sleep(float(response.headers.get("Retry-After") or 0.1 * 2**attempt))
        return response

    def get_page(self, url: str, params: dict[str, Any]) -> dict[str, Any]:
        """GET one page, fetching a new token once on 401."""
        response = self.send("GET", url, params=params, headers=self.headers)
        if response.status_code == requests.codes.unauthorized:
            self.headers["Authorization"] = "Bearer " + self.fetch_token()
            response = self.send("GET", url, params=params, headers=self.headers)
        response.raise_for_status()
        return response.json()  # type: ignore[no-any-return]


def next_cursor(page: dict[str, Any]) -> str | None:
    """Return the next cursor, or None on the last page."""
    paging = page.get("paging") or {}
    nxt = paging.get("next") or {}
    return nxt.get("after")


def sync_stream(client: Client, stream: str, out: IO[str]) -> tuple[int, int]:
    """Write every record of one stream; return (records, pages)."""
    url = f"{client.base_url}/v1/{stream}"
    params: dict[str, Any] = {"limit": PAGE_SIZE}
    records = pages = 0
    dumps = json.JSONEncoder(separators=(",", ":")).encode
    while True:
        page = client.get_page(url, params)
        pages += 1
        for record in page.get("data") or ():
            out.write(dumps({"type": "RECORD", "stream": stream, "record": record}) + "\n")
            records += 1
        cursor = next_cursor(page)
        if not cursor:
            return records, pages
        params["after"] = cursor


def main(argv: list[str] | None = None) -> None:
    """Extract every stream to stdout and print a summary to stderr."""
    client = Client(parse_args(argv))
    summary: dict[str, dict[str, int]] = {"records": {}, "pages": {}}
    for stream in STREAMS:
        records, pages = sync_stream(client, stream, sys.stdout)
        summary["records"][stream] = records
        summary["pages"][stream] = pages
    sys.stdout.flush()
    print(json.dumps(summary), file=sys.stderr)


if __name__ == "__main__":
    main()
