"""Fixtures: a sandbox API server on a random free port for each test that needs one."""

from __future__ import annotations

import typing as t

import pytest

from tap_analytics.sandbox import SandboxServer

if t.TYPE_CHECKING:
    from collections.abc import Iterator

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
