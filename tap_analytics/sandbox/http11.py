"""A minimal asyncio HTTP/1.1 server protocol: keep-alive, pipelining, Content-Length bodies."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from http import HTTPStatus
from typing import cast
from urllib.parse import parse_qsl, unquote

from tap_analytics.sandbox.responses import Deferred, Reply, Request, Response, api_error

MAX_HEAD_BYTES = 65_536
MAX_TARGET_BYTES = 8_192  # as common servers: a longer request line is answered 414
# A head is read whole up to this size before it is refused, so that the client, done sending,
# reads the refusal (closing on unread bytes would reset the connection instead).
MAX_READ_HEAD_BYTES = 4_194_304
MAX_BODY_BYTES = 10_000_000
REQUEST_LINE_PARTS = 3
Handler = Callable[[Request], Reply]


REASONS = {status.value: status.phrase for status in HTTPStatus}


def reason(status: int) -> str:
    """Return the reason phrase of a status code."""
    return REASONS.get(status, "Unknown")


def encode_head(response: Response, content_length: int, *, keep_alive: bool) -> bytes:
    """Encode the status line and headers of a response."""
    lines = [
        f"HTTP/1.1 {response.status} {reason(response.status)}",
        f"Content-Type: {response.content_type}",
        f"Content-Length: {content_length}",
    ]
    lines.extend(f"{name}: {value}" for name, value in response.headers)
    if not keep_alive:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


class BadRequestError(Exception):
    """The bytes received are not an HTTP/1.1 request this server understands."""

    def __init__(self, status: int, message: str) -> None:
        """Remember the status to answer with."""
        super().__init__(message)
        self.status = status


def parse_head(head: str) -> tuple[str, str, str, dict[str, str]]:
    """Split a request head into method, target, version and lower-cased headers."""
    lines = head.split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != REQUEST_LINE_PARTS or not parts[2].startswith("HTTP/1."):
        raise BadRequestError(400, "malformed request line")
    headers = {}
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if not colon:
            raise BadRequestError(400, "malformed header line")
        headers[name.strip().lower()] = value.strip()
    return parts[0], parts[1], parts[2], headers


class HttpProtocol(asyncio.Protocol):
    """One client connection; requests on it are answered one after the other."""

    def __init__(self, handle: Handler, connections: set[HttpProtocol]) -> None:
        """Serve requests with `handle`, registering the connection in `connections`."""
        self.handle = handle
        self.connections = connections
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None
        self.waiting = False  # a deferred reply is pending; later requests wait
        self.closed = False
        self.continued = False  # "100 Continue" already sent for the pending request
        self.timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Register the new connection."""
        self.transport = cast("asyncio.Transport", transport)
        self.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:  # noqa: ARG002
        """Forget the connection and any pending deferred reply."""
        self.closed = True
        self.connections.discard(self)
        if self.timer is not None:
            self.timer.cancel()

    def data_received(self, data: bytes) -> None:
        """Buffer bytes and answer every complete request."""
        self.buffer += data
        if not self.waiting:
            self.process()

    def close(self) -> None:
        """Close the connection."""
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    def process(self) -> None:
        """Answer complete requests in the buffer until one has to wait."""
        while not self.waiting and not self.closed:
            try:
                request = self.next_request()
            except BadRequestError as error:
                self.send(api_error(error.status, str(error)), keep_alive=False)
                return
            if request is None:
                return
            self.deliver(self.handle(request), keep_alive=request.keep_alive)

    def next_request(self) -> Request | None:
        """Take one complete request off the buffer, or return None if it is incomplete."""
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(self.buffer) > MAX_READ_HEAD_BYTES:
                raise BadRequestError(431, "request head too large")
            return None
        line_end = self.buffer.find(b"\r\n", 0, end + 2)
        if line_end > MAX_TARGET_BYTES:
            raise BadRequestError(414, "request target too long")
        if end > MAX_HEAD_BYTES:
            raise BadRequestError(431, "request head too large")
        method, target, version, headers = parse_head(self.buffer[:end].decode("latin-1"))
        if "transfer-encoding" in headers:
            raise BadRequestError(411, "send a Content-Length, not a chunked body")
        length_text = headers.get("content-length", "0")
        if not length_text.isdigit() or int(length_text) > MAX_BODY_BYTES:
            raise BadRequestError(400, "bad Content-Length")
        total = end + 4 + int(length_text)
        if len(self.buffer) < total:
            if headers.get("expect", "").lower() == "100-continue" and not self.continued:
                self.continued = True
                self.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            return None
        body = bytes(self.buffer[end + 4 : total])
        del self.buffer[:total]
        self.continued = False
        connection = headers.get("connection", "").lower()
        if version == "HTTP/1.0":
            keep_alive = "keep-alive" in connection
        else:
            keep_alive = "close" not in connection
        raw_path, _, query_string = target.partition("?")
        query = dict(parse_qsl(query_string, keep_blank_values=True))
        return Request(method, unquote(raw_path), query, headers, body, keep_alive)

    def deliver(self, reply: Reply, *, keep_alive: bool) -> None:
        """Send a reply now, or once its delay has passed."""
        if isinstance(reply, Deferred):
            self.waiting = True
            loop = asyncio.get_running_loop()
            self.timer = loop.call_later(reply.delay, self.resume, reply, keep_alive)
        else:
            self.send(reply, keep_alive=keep_alive)

    def resume(self, reply: Deferred, keep_alive: bool) -> None:  # noqa: FBT001
        """Compute and send a deferred reply, then go on with buffered requests."""
        self.timer = None
        if self.closed:
            return
        self.waiting = False
        self.deliver(reply.then(), keep_alive=keep_alive)
        self.process()

    def trickle(self, data: bytes, sent: int, pace: float, *, keep_alive: bool) -> None:
        """Write the next byte of `data`, then the rest one at a time, `pace` seconds apart."""
        self.timer = None
        if self.closed:
            return
        if sent == len(data):
            self.waiting = False
            if not keep_alive:
                self.close()
            self.process()
            return
        self.write(data[sent : sent + 1])
        loop = asyncio.get_running_loop()
        self.timer = loop.call_later(
            pace, lambda: self.trickle(data, sent + 1, pace, keep_alive=keep_alive)
        )

    def write(self, data: bytes) -> None:
        """Write bytes unless the connection is gone."""
        if self.transport is not None and not self.closed:
            self.transport.write(data)

    def send(self, response: Response, *, keep_alive: bool) -> None:
        """Write a response (or drop the connection, truncate the body or never answer)."""
        if response.action == "drop":
            self.close()
            return
        if response.action == "hang":  # later requests on this connection wait behind it
            self.waiting = True
            return
        if response.action in {"trickle", "trickle_head"}:
            head = encode_head(response, len(response.body), keep_alive=keep_alive)
            if response.action == "trickle":
                self.write(head)
                head = b""
            self.waiting = True
            self.trickle(head + response.body, 0, response.pace, keep_alive=keep_alive)
            return
        body = response.body
        if response.action == "truncate":
            head = encode_head(response, len(body), keep_alive=False)
            self.write(head + body[: len(body) // 2])
            self.close()
            return
        self.write(encode_head(response, len(body), keep_alive=keep_alive) + body)
        if not keep_alive:
            self.close()
