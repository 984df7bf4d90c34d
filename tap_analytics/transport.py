"""HTTP sessions whose answers arrive whole within request_timeout, and no larger than a cap."""

from __future__ import annotations

import time
import typing as t

import requests
from requests.adapters import HTTPAdapter
from typing_extensions import override
from urllib3.exceptions import DecodeError, ProtocolError, ReadTimeoutError

if t.TYPE_CHECKING:
    from collections.abc import Mapping

# An answer inflating past this is refused: a page of 100 records is a few hundred KB, and a
# gzip body of 1 MB can inflate to 1 GiB.
MAX_ANSWER_BYTES = 256 * 1024 * 1024
CHUNK_BYTES = 65_536  # read at a time; inflating one chunk is bounded by it too


class AnswerTooSlowError(requests.exceptions.ReadTimeout):
    """The answer did not arrive whole within request_timeout of sending the request."""


class AnswerTooLargeError(requests.exceptions.RequestException):
    """The answer's body, inflated, is larger than MAX_ANSWER_BYTES."""


class BoundedAdapter(HTTPAdapter):
    """Reads every body itself: by a deadline, in chunks, inflating at most the cap."""

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
        response = super().send(request, True, timeout, verify, cert, proxies)  # noqa: FBT003
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


def bounded(session: requests.Session) -> requests.Session:
    """Make a session read answers whole within each request's timeout, and capped."""
    adapter = BoundedAdapter()
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session
