"""Run the tap in-process or as a subprocess, read back its messages, read the API directly."""

from __future__ import annotations

import contextlib
import copy
import io
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import typing as t
from dataclasses import dataclass, field
from pathlib import Path
from unittest import mock

import requests

from tap_analytics.tap import TapAnalytics

if t.TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from tap_analytics.sandbox.server import SandboxServer

CLIENT_ID = "sandbox-client"
CLIENT_SECRET = "sandbox-secret"
TAP = str(Path(sys.executable).with_name("tap-analytics"))
# `pytest --max-parallel-streams 1` (and --max-parallel-requests) hand their value to every
# test's config, subprocesses' included, through an environment variable each.
PARALLELISM_SETTINGS = ("max_parallel_streams", "max_parallel_requests")


def option_variable(setting: str) -> str:
    """The environment variable that carries a setting's pytest option to the test configs."""
    return f"TAP_ANALYTICS_TESTS_{setting.upper()}"


def settings_from_options() -> dict[str, int]:
    """The settings pytest's options gave; one the tap does not have (yet) is left out."""
    known = TapAnalytics.config_jsonschema["properties"]
    return {
        setting: int(os.environ[variable])
        for setting in PARALLELISM_SETTINGS
        if (variable := option_variable(setting)) in os.environ and setting in known
    }


# A dlt rest_api configuration of one resource, as a user writes it (placeholders for the secrets).
SEED: dict[str, t.Any] = {
    "client": {
        "base_url": "https://api.example.com",
        "auth": {
            "type": "oauth2",
            "client_id": "...",
            "client_secret": "...",
            "token_url": "https://api.example.com/oauth/v1/token",
        },
    },
    "resource_defaults": {"primary_key": "id", "write_disposition": "merge"},
    "resources": [
        {
            "name": "resource_name",
            "endpoint": {
                "path": "/v1/resource",
                "data_selector": "data",
                "paginator": {
                    "type": "cursor",
                    "limit": 100,
                    "cursor_param": "after",
                    "cursor_path": "paging.next.after",
                },
                "error_handler": {
                    "retry_on_status_codes": [429, 500, 502, 503],
                    "max_retries": 3,
                    "backoff_factor": 2,
                },
            },
        }
    ],
}


def seed_config(base_url: str) -> dict[str, t.Any]:
    """The seed configuration verbatim, with a sandbox's address and secrets filled in."""
    config = copy.deepcopy(SEED)
    config["client"]["base_url"] = base_url
    config["client"]["auth"].update(
        client_id=CLIENT_ID, client_secret=CLIENT_SECRET, token_url=base_url + "/oauth/v1/token"
    )
    return config


def config_for(base_url: str, **overrides: t.Any) -> dict[str, t.Any]:
    """A config for the sandbox with fast retries."""
    config = {
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "base_url": base_url,
        "backoff_factor": 0.01,
        "request_timeout": 5,
        "max_parallel_streams": 4,
        **settings_from_options(),
    }
    config.update(overrides)
    return config


@dataclass
class Run:
    """The messages of one tap run."""

    messages: list[dict[str, t.Any]]
    stderr: str = ""
    returncode: int = 0
    error: BaseException | None = None
    records: dict[str, list[dict[str, t.Any]]] = field(default_factory=dict)
    stdout: bytes = b""  # the lines as written, for checks of their exact text

    def __post_init__(self) -> None:
        """Group records by stream."""
        for message in self.messages:
            if message["type"] == "RECORD":
                self.records.setdefault(message["stream"], []).append(message["record"])

    @property
    def states(self) -> list[dict[str, t.Any]]:
        """Every STATE value, in order."""
        return [m["value"] for m in self.messages if m["type"] == "STATE"]

    @property
    def last_state(self) -> dict[str, t.Any]:
        """The last STATE value."""
        return self.states[-1]

    def ids(self, stream: str) -> list[str]:
        """Record ids of a stream, in order."""
        return [r["id"] for r in self.records.get(stream, [])]

    def bookmark(self, stream: str) -> str | None:
        """The final bookmark of a stream."""
        value = self.last_state.get("bookmarks", {}).get(stream, {}).get("replication_key_value")
        assert value is None or isinstance(value, str), value
        return value


def parse_lines(data: bytes) -> list[dict[str, t.Any]]:
    """Parse Singer JSON lines; only an unterminated last line (a killed run) may be partial."""
    *complete, unterminated = data.split(b"\n")
    messages = []
    for number, line in enumerate(complete, start=1):
        try:
            messages.append(json.loads(line))
        except json.JSONDecodeError:
            msg = f"output line {number} is not a JSON message: {line[:300]!r}"
            raise AssertionError(msg) from None
    if unterminated:
        with contextlib.suppress(json.JSONDecodeError):
            messages.append(json.loads(unterminated))
    return messages


def run_tap(
    config: dict[str, t.Any],
    *,
    state: dict[str, t.Any] | None = None,
    catalog: dict[str, t.Any] | None = None,
    expect_failure: bool = False,
) -> Run:
    """Run a sync in this process and collect its messages."""
    tap = TapAnalytics(config=config, state=state, catalog=catalog, validate_config=True)
    out = io.BytesIO()
    tap.writer.out = out
    error: BaseException | None = None
    try:
        tap.sync_all()
    except Exception as exc:
        if not expect_failure:
            raise
        error = exc
    else:
        assert not expect_failure, "the sync was expected to fail"
    return Run(parse_lines(out.getvalue()), error=error, stdout=out.getvalue())


def run_cli(
    config: dict[str, t.Any] | None,
    *args: str,
    state: dict[str, t.Any] | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 120,
) -> Run:
    """Run the tap's command line and collect stdout messages, stderr and exit code."""
    with tempfile.TemporaryDirectory() as tmp:
        argv = [TAP, *args]
        if config is not None:
            Path(tmp, "config.json").write_text(json.dumps(config))
            argv += ["--config", str(Path(tmp, "config.json"))]
        if state is not None:
            Path(tmp, "state.json").write_text(json.dumps(state))
            argv += ["--state", str(Path(tmp, "state.json"))]
        result = subprocess.run(
            argv,
            capture_output=True,
            timeout=timeout,
            check=False,
            env={**os.environ, **(env or {})},
        )
    return Run(
        parse_lines(result.stdout), result.stderr.decode(), result.returncode, stdout=result.stdout
    )


def customers_only(sandbox_factory: Callable[..., SandboxServer], customers: int) -> SandboxServer:
    """A sandbox of `customers` customers and one record of each other stream."""
    return sandbox_factory(
        counts={"customers": customers, "sessions": 1, "events": 1, "campaigns": 1}
    )


def catalog_selecting(config: dict[str, t.Any], streams: set[str]) -> dict[str, t.Any]:
    """A discovered catalog with only some streams selected."""
    catalog = TapAnalytics(config=config).catalog_dict
    for entry in catalog["streams"]:
        for metadata in entry["metadata"]:
            if metadata["breadcrumb"] == []:
                metadata["metadata"]["selected"] = entry["tap_stream_id"] in streams
    return catalog


def api_pages(base_url: str, resource: str, limit: int = 100) -> Iterator[dict[str, t.Any]]:
    """Every page of a resource, read with plain `requests`: an oracle that shares no tap code."""
    with requests.Session() as session:
        session.trust_env = False  # never through a proxy from the environment
        form = {
            "grant_type": "client_credentials",
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
        }
        token = session.post(f"{base_url}/oauth/v1/token", data=form, timeout=30)
        token.raise_for_status()
        session.headers["Authorization"] = f"Bearer {token.json()['access_token']}"
        query: dict[str, t.Any] = {"limit": limit}
        seen: set[str] = set()
        while True:
            reply = session.get(f"{base_url}/v1/{resource}", params=query, timeout=30)
            reply.raise_for_status()
            page: dict[str, t.Any] = reply.json()
            yield page
            after = ((page.get("paging") or {}).get("next") or {}).get("after")
            if after is None:
                return
            assert after not in seen, f"{resource}: the API repeated the cursor {after!r}"
            seen.add(after)
            query = {"limit": limit, "after": after}


def api_ids(base_url: str, resource: str) -> list[str]:
    """The ids of a resource in API order, read over HTTP (see api_pages)."""
    return [record["id"] for page in api_pages(base_url, resource) for record in page["data"]]


class FakeClock:
    """A clock that moves only when told to (or by `step` at each reading): no test waits on it."""

    def __init__(self, step: float = 0.0) -> None:
        """Start at 1000 s; move by `step` after each reading."""
        self.time = 1000.0
        self.step = step
        self._lock = threading.Lock()  # read and moved by several threads

    def now(self) -> float:
        """The time, then the clock moves by its step."""
        with self._lock:
            now = self.time
            self.time += self.step
        return now

    def sleep(self, seconds: float) -> None:
        """Move the clock instead of waiting."""
        with self._lock:
            self.time += seconds


@contextlib.contextmanager
def wiretap(
    listener: Callable[[requests.Response, float], None],
    clock: Callable[[], float] = time.monotonic,
) -> Iterator[None]:
    """Show `listener` every HTTP response this process receives, before its caller sees it.

    The listener also gets the `clock` reading at which the request was sent.
    """
    send = requests.Session.send

    def tapped(
        session: requests.Session, request: requests.PreparedRequest, **kwargs: t.Any
    ) -> requests.Response:
        sent_at = clock()
        response = send(session, request, **kwargs)
        listener(response, sent_at)
        return response

    with mock.patch.object(requests.Session, "send", tapped):
        yield
