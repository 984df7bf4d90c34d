"""SandboxServer: the sandbox API served from a background thread with its own event loop."""

from __future__ import annotations

import asyncio
import concurrent.futures
import copy
import threading
from typing import TYPE_CHECKING, Any, Self, TypeVar

from tap_analytics.sandbox.app import SandboxApp
from tap_analytics.sandbox.http11 import HttpProtocol
from tap_analytics.sandbox.ratelimit import DEFAULT_RATE_LIMIT, DEFAULT_RATE_WINDOW

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path
    from types import TracebackType

T = TypeVar("T")
STOP_TIMEOUT_SECONDS = 10.0


class SandboxServer:
    """A local Analytics API v1; start() serves it in the background, stop() ends it."""

    def __init__(  # noqa: PLR0913
        self,
        counts: dict[str, int] | None = None,
        *,
        seed: int = 1,
        client_id: str = "sandbox-client",
        client_secret: str = "sandbox-secret",  # noqa: S107
        token_ttl: int = 3600,
        latency_ms: float = 0,
        host: str = "127.0.0.1",
        port: int = 0,
        rate_limit: int = DEFAULT_RATE_LIMIT,
        rate_window: float = DEFAULT_RATE_WINDOW,
        one_token_per_client: bool = False,
        echo_credentials: bool = False,
        field_overrides: list[dict[str, Any]] | None = None,
        data_dir: Path | str | None = None,
    ) -> None:
        """Configure the sandbox (see SandboxApp for the switches); nothing is served yet."""
        self.app = SandboxApp(
            counts=counts,
            seed=seed,
            client_id=client_id,
            client_secret=client_secret,
            token_ttl=token_ttl,
            latency_ms=latency_ms,
            rate_limit=rate_limit,
            rate_window=rate_window,
            one_token_per_client=one_token_per_client,
            echo_credentials=echo_credentials,
            field_overrides=field_overrides,
            data_dir=data_dir,
        )
        self.host = host
        self.port = port
        self.loop: asyncio.AbstractEventLoop | None = None
        self.thread: threading.Thread | None = None
        self.server: asyncio.Server | None = None
        self.connections: set[HttpProtocol] = set()

    @property
    def base_url(self) -> str:
        """Return http://host:port of the running server."""
        if self.server is None:
            msg = "the sandbox is not started"
            raise RuntimeError(msg)
        return f"http://{self.host}:{self.port}"

    def start(self) -> Self:
        """Bind the port and serve in a background thread; return once connections are accepted."""
        if self.thread is not None:
            msg = "the sandbox is already started"
            raise RuntimeError(msg)
        started: concurrent.futures.Future[None] = concurrent.futures.Future()
        self.thread = threading.Thread(
            target=self.serve, args=(started,), name="sandbox-server", daemon=True
        )
        self.thread.start()
        try:
            started.result()
        except BaseException:
            self.thread.join()
            self.thread = None
            raise
        return self

    def serve(self, started: concurrent.futures.Future[None]) -> None:
        """Run the event loop of the server thread until stop()."""
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            self.server = loop.run_until_complete(
                loop.create_server(
                    lambda: HttpProtocol(self.app.handle, self.connections),
                    self.host,
                    self.port,
                    backlog=1024,
                )
            )
        except BaseException as error:  # noqa: BLE001 (handed to the thread that called start)
            loop.close()
            started.set_exception(error)
            return
        self.port = self.server.sockets[0].getsockname()[1]
        self.loop = loop
        started.set_result(None)
        try:
            loop.run_forever()
        finally:
            self.server.close()
            for connection in list(self.connections):
                connection.close()
            loop.run_until_complete(self.server.wait_closed())
            loop.close()

    def stop(self) -> None:
        """Stop serving, close every connection and join the thread."""
        if self.thread is None or self.loop is None:
            return
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(STOP_TIMEOUT_SECONDS)
        self.thread = None
        self.loop = None
        self.server = None

    def __enter__(self) -> Self:
        """Start the server."""
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Stop the server."""
        self.stop()

    def call(self, function: Callable[[], T]) -> T:
        """Run `function` on the loop thread (here if not serving) and return its result."""
        loop = self.loop
        if loop is None or threading.current_thread() is self.thread:
            return function()
        done: concurrent.futures.Future[T] = concurrent.futures.Future()

        def run() -> None:
            try:
                done.set_result(function())
            except Exception as error:  # noqa: BLE001 (re-raised in the calling thread)
                done.set_exception(error)

        loop.call_soon_threadsafe(run)
        return done.result()

    def warm(self) -> None:
        """Generate every resource's records now instead of on the first request."""
        self.call(self.app.warm)

    def add_fault(self, fault: dict[str, Any]) -> None:
        """Add a fault rule (see the faults module for its fields)."""
        self.call(lambda: self.app.add_fault(fault))

    def clear_faults(self) -> None:
        """Remove every fault rule."""
        self.call(self.app.faults.clear)

    def update_records(
        self, resource: str, count: int | None = None, ids: list[str] | None = None
    ) -> list[dict[str, Any]]:
        """Update `count` records spread over the order (or the given ids); return them."""
        return self.call(lambda: self.app.update_records(resource, count, ids))

    def add_records(self, resource: str, count: int) -> list[dict[str, Any]]:
        """Add `count` new records after every other one; return them."""
        return self.call(lambda: self.app.add_records(resource, count))

    def revoke_tokens(self) -> None:
        """Revoke every token issued so far."""
        self.call(self.app.tokens.revoke_all)

    def request_log(self) -> list[dict[str, Any]]:
        """Return the requests served so far (control requests excluded)."""
        return self.call(lambda: copy.deepcopy(list(self.app.request_log)))

    def clear_request_log(self) -> None:
        """Forget the requests served so far."""
        self.call(self.app.request_log.clear)

    def records(self, resource: str) -> list[dict[str, Any]]:
        """Return the current records of a resource in API order."""
        return self.call(lambda: self.app.records(resource))

    def set_latency(self, ms: float) -> None:
        """Delay every data request by `ms` milliseconds from now on."""
        self.call(lambda: self.app.configure(latency_ms=ms))

    def configure(  # noqa: PLR0913
        self,
        *,
        latency_ms: float | None = None,
        token_ttl: int | None = None,
        rate_limit: int | None = None,
        rate_window: float | None = None,
        one_token_per_client: bool | None = None,
        echo_credentials: bool | None = None,
        field_overrides: list[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """Change settings as POST /_sandbox/config does (None keeps one); return them all."""
        return self.call(
            lambda: self.app.configure(
                latency_ms=latency_ms,
                token_ttl=token_ttl,
                rate_limit=rate_limit,
                rate_window=rate_window,
                one_token_per_client=one_token_per_client,
                echo_credentials=echo_credentials,
                field_overrides=field_overrides,
            )
        )

    def counts(self) -> dict[str, int]:
        """Return how many records each resource has."""
        return self.call(self.app.current_counts)
