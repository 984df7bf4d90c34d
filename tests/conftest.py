"""Fixtures: a sandbox API server on a random free port for each test that needs one."""

from __future__ import annotations

import os
import typing as t

import pytest

from tap_analytics.sandbox import SandboxServer
from tapkit import PARALLEL_STREAMS_VARIABLE

if t.TYPE_CHECKING:
    from collections.abc import Iterator


def pytest_addoption(parser: pytest.Parser) -> None:
    """Add --max-parallel-streams: the tap setting every test's config gets."""
    parser.addoption("--max-parallel-streams", default="4", help="max_parallel_streams in tests")


def pytest_configure(config: pytest.Config) -> None:
    """Hand --max-parallel-streams to the test configs (and to subprocesses' configs)."""
    os.environ[PARALLEL_STREAMS_VARIABLE] = str(config.getoption("--max-parallel-streams"))


SMALL = {"customers": 230, "sessions": 170, "events": 260, "campaigns": 45, "resource": 120}


@pytest.fixture
def sandbox() -> Iterator[SandboxServer]:
    """A sandbox with a few hundred records per resource."""
    with SandboxServer(counts=SMALL) as server:
        yield server


@pytest.fixture
def sandbox_factory() -> Iterator[t.Callable[..., SandboxServer]]:
    """Start sandboxes with custom settings; all are stopped after the test."""
    servers: list[SandboxServer] = []

    def start(**kwargs: t.Any) -> SandboxServer:
        kwargs.setdefault("counts", SMALL)
        server = SandboxServer(**kwargs)
        server.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()
