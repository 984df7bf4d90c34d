"""HTTP sessions whose answers arrive whole within request_timeout, and no larger than a cap."""

from __future__ import annotations

import contextlib
import heapq
import itertools
import socket
import threading
import time
import typing as t

import requests
from requests.adapters import HTTPAdapter
from typing_extensions import override
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import DecodeError, ProtocolError, ReadTimeoutError
from urllib3.poolmanager import ProxyManager

if t.TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

    from urllib3.response import HTTPResponse

# An answer inflating past this is refused: a page of 100 records is a few hundred KB, and a
# gzip body of 1 MB can inflate to 1 GiB.
MAX_ANSWER_BYTES = 256 * 1024 * 1024
CHUNK_BYTES = 65_536  # read at a time; inflating one chunk is bounded by it too
FORGET_IN_BULK = 64  # finished watches below the heap's top, past which they are swept out


class AnswerTooSlowError(requests.exceptions.ReadTimeout):
    """The answer did not arrive whole within request_timeout of sending the request."""


class AnswerTooLargeError(requests.exceptions.RequestException):
    """The answer's body, inflated, is larger than MAX_ANSWER_BYTES."""


class Watchdog:
    """One thread that shuts the socket of an answer whose head is not in by its deadline.

    Socket timeouts bound the wait for each byte only: a head trickled a byte at a time
    would never end. (The body is read by the adapter, which checks the deadline itself.)
    """

    def __init__(self) -> None:
        """Watch nothing yet; the thread starts with the first watch."""
        self._wake = threading.Condition()
        self._due: list[tuple[float, int, socket.socket]] = []
        self._finished: set[int] = set()
        self._keys = itertools.count()
        self._thread: threading.Thread | None = None

    @contextlib.contextmanager
    def watching(self, sock: socket.socket | None) -> Iterator[None]:
        """Shut `sock` down if the calling thread's request is still here at its deadline."""
        deadline = getattr(REQUEST, "deadline", None)
        if deadline is None or sock is None:
            yield
            return
        with self._wake:
            key = next(self._keys)
            heapq.heappush(self._due, (deadline, key, sock))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="watchdog", daemon=True)
                self._thread.start()
            if self._due[0][1] == key:  # due first: the thread sleeps until a later one
                self._wake.notify()
        try:
            yield
        finally:
            with self._wake:
                self._finished.add(key)
                self._forget_finished()

    def _forget_finished(self) -> None:
        """Drop the watches that ended: most end in the order they began, at the heap's top."""
        # Left to the thread, they would pile up for request_timeout: thousands a second.
        while self._due and self._due[0][1] in self._finished:
            self._finished.discard(heapq.heappop(self._due)[1])
        if len(self._finished) > max(len(self._due) // 2, FORGET_IN_BULK):
            self._due = [due for due in self._due if due[1] not in self._finished]
            heapq.heapify(self._due)
            self._finished.clear()

    def _run(self) -> None:
        """Shut down each watched socket at its deadline, unless its head came in time."""
        while True:
            with self._wake:
                sock = self._next_overdue()
            with contextlib.suppress(OSError):  # already closed
                sock.shutdown(socket.SHUT_RDWR)

    def _next_overdue(self) -> socket.socket:
        """Wait (holding the condition) for a watch to pass its deadline; return its socket."""
        while True:
            self._forget_finished()
            if not self._due:
                self._wake.wait()
                continue
            wait = self._due[0][0] - time.monotonic()
            if wait <= 0:
                return heapq.heappop(self._due)[2]
            self._wake.wait(wait)


REQUEST = threading.local()  # the deadline of the request this thread is sending
WATCHDOG = Watchdog()


class WatchedConnection(HTTPConnection):
    """Mixed into urllib3's connections: an answer's head must arrive by the request's deadline."""

    # An HTTPConnection so that mypy knows what super() is; HTTPSConnection is one too, so mixed
    # in first this wraps either class's getresponse.
    @override
    def getresponse(self) -> HTTPResponse:  # type: ignore[override]  # as urllib3 does
        with WATCHDOG.watching(self.sock):
            return super().getresponse()


class WatchedHTTPConnection(WatchedConnection):
    """A connection whose answer's head must arrive by the request's deadline."""


class WatchedHTTPSConnection(WatchedConnection, HTTPSConnection):
    """A TLS connection whose answer's head must arrive by the request's deadline."""


class WatchedHTTPConnectionPool(HTTPConnectionPool):
    """Pools of watched connections."""

    ConnectionCls = WatchedHTTPConnection


class WatchedHTTPSConnectionPool(HTTPSConnectionPool):
    """Pools of watched TLS connections."""

    ConnectionCls = WatchedHTTPSConnection


WATCHED_POOLS = {"http": WatchedHTTPConnectionPool, "https": WatchedHTTPSConnectionPool}


class BoundedAdapter(HTTPAdapter):
    """Reads every answer by a deadline: its head watched, its body in chunks, capped."""

    @override
    def init_poolmanager(self, *args: t.Any, **kwargs: t.Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = WATCHED_POOLS

    @override
    def proxy_manager_for(self, proxy: str, **proxy_kwargs: t.Any) -> t.Any:
        # Through an HTTP(S) proxy too (HTTP_PROXY, HTTPS_PROXY); a SOCKS proxy's pools are
        # its own, and only the socket timeouts bound an answer's head there.
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        if isinstance(manager, ProxyManager):
            manager.pool_classes_by_scheme = WATCHED_POOLS
        return manager

    @override
    def send(
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: float | tuple[float, float] | tuple[float, None] | None = None,
        verify: bool | str = True,
        cert: bytes | str | tuple[bytes | str, bytes | str] | None = None,
        proxies: Mapping[str, str] | None = None,
    ) -> requests.Response:
        seconds = timeout if isinstance(timeout, int | float) else None
        deadline = None if seconds is None else time.monotonic() + seconds
        REQUEST.deadline = deadline
        try:
            response = super().send(request, True, timeout, verify, cert, proxies)  # noqa: FBT003
        except requests.exceptions.ConnectionError:
            if deadline is not None and time.monotonic() >= deadline:  # the watchdog's doing
                raise AnswerTooSlowError(too_slow(seconds), request=request) from None
            raise
        finally:
            REQUEST.deadline = None
        if not stream:
            self._read_body(response, deadline, seconds)
        return response

    @staticmethod
    def _read_body(
        response: requests.Response, deadline: float | None, seconds: float | None
    ) -> None:
        """Read and inflate the whole body into the response, or fail and close it."""
        try:
            chunks = read_chunks(response, deadline, seconds)
        except ReadTimeoutError:
            response.close()
            raise AnswerTooSlowError(too_slow(seconds), request=response.request) from None
        except ProtocolError as error:  # as requests words them when it reads a body
            response.close()
            raise requests.exceptions.ChunkedEncodingError(error) from None
        except DecodeError as error:
            response.close()
            raise requests.exceptions.ContentDecodingError(error) from None
        except BaseException:
            response.close()
            raise
        # What requests' own reading of the body leaves behind.
        response._content = b"".join(chunks)  # noqa: SLF001
        response._content_consumed = True  # type: ignore[attr-defined]  # noqa: SLF001


def read_chunks(
    response: requests.Response, deadline: float | None, seconds: float | None
) -> list[bytes]:
    """Read a body, inflated, in chunks: by the deadline and up to MAX_ANSWER_BYTES."""
    raw = response.raw
    chunks: list[bytes] = []
    size = 0
    while True:
        if deadline is not None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AnswerTooSlowError(too_slow(seconds), request=response.request)
            # A stalled server must not hold a read past the deadline either.
            sock = getattr(raw.connection, "sock", None)
            if sock is not None:
                sock.settimeout(remaining)
        chunk = raw.read1(CHUNK_BYTES, decode_content=True)
        if not chunk:
            return chunks
        size += len(chunk)
        if size > MAX_ANSWER_BYTES:
            msg = f"the answer is larger than {MAX_ANSWER_BYTES:,} bytes (inflated)"
            raise AnswerTooLargeError(msg, request=response.request)
        chunks.append(chunk)


def too_slow(seconds: float | None) -> str:
    """Say that an answer did not arrive whole in time."""
    return f"the answer did not arrive whole within {seconds or 0:g} s"


# What a request that failed without an answer met, in words (requests' own are urllib3's).
NO_ANSWER: dict[type[Exception], str] = {
    requests.exceptions.Timeout: "no whole answer within request_timeout",
    requests.exceptions.ChunkedEncodingError: "the answer was cut off",
    requests.exceptions.ContentDecodingError: "the answer's compressed body is corrupt",
    requests.exceptions.ConnectionError: "the connection failed or was dropped",
}


def no_answer(error: BaseException) -> str | None:
    """Say what a request without an answer met; None for other failures."""
    return next((text for kind, text in NO_ANSWER.items() if isinstance(error, kind)), None)


def bounded(session: requests.Session, connections: int) -> requests.Session:
    """Make a session read answers whole within each request's timeout, and capped.

    It keeps `connections` open to a host: one for each request it may have in flight.
    """
    adapter = BoundedAdapter(pool_maxsize=max(connections, requests.adapters.DEFAULT_POOLSIZE))
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session
