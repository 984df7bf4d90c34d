"""Fixtures: a sandbox API server on a random free port for each test that needs one."""

from __future__ import annotations

import contextlib
import os
import socket
import typing as t

import pytest

from tap_analytics.sandbox import SandboxServer
from tapkit import PARALLELISM_SETTINGS, option_variable

if t.TYPE_CHECKING:
    from collections.abc import Iterator


def pytest_addoption(parser: pytest.Parser) -> None:
    """Add --max-parallel-streams and --max-parallel-requests: settings every test config gets."""
    for setting in PARALLELISM_SETTINGS:
        option = "--" + setting.replace("_", "-")
        parser.addoption(option, help=f"{setting} in every test's config (if the tap has it)")


def pytest_configure(config: pytest.Config) -> None:
    """Hand the options to the test configs, subprocesses' and xdist workers' included."""
    for setting in PARALLELISM_SETTINGS:
        value = config.getoption(setting)
        if value is not None:
            os.environ[option_variable(setting)] = str(value)


DOCS_PORT = 8787  # the port the docs and meltano.yml named before no command needed one


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A port that another listener holds for the test."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield holder.getsockname()[1]


@pytest.fixture
def docs_port_busy() -> Iterator[int]:
    """The port the docs once named, held by this test or by whoever holds it already."""
    with socket.socket() as holder:
        with contextlib.suppress(OSError):  # already taken: busy either way
            holder.bind(("127.0.0.1", DOCS_PORT))
            holder.listen()
        yield DOCS_PORT


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
