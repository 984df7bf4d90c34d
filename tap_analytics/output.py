"""One locked, buffered writer for every Singer message, so lines never interleave."""

from __future__ import annotations

import sys
import threading
import typing as t

import msgspec
from singer_sdk.singerlib.encoding.base import GenericSingerWriter
from singer_sdk.singerlib.encoding.simple import Message
from typing_extensions import override

if t.TYPE_CHECKING:
    from collections.abc import Callable, Iterable

_encoder = msgspec.json.Encoder(decimal_format="number")


def encode_line(message: object) -> bytes:
    """Serialize one message dict as a JSON line."""
    return _encoder.encode(message) + b"\n"


def encode_lines(messages: list[dict[str, t.Any]]) -> bytes:
    """Serialize message dicts as JSON lines, in one call."""
    return _encoder.encode_lines(messages)


class LockedWriter(GenericSingerWriter[bytes, Message]):
    """Writes whole lines under one lock; flushes with every STATE so state never leads data."""

    def __init__(self, out: t.BinaryIO | None = None) -> None:
        """Write to `out`, by default this process's stdout."""
        self.lock = threading.RLock()
        self.out: t.BinaryIO = out if out is not None else sys.stdout.buffer
        self.closed = False

    @override
    def serialize_message(self, message: Message) -> bytes:
        return encode_line(message.to_dict())

    @override
    def write_message(self, message: Message) -> None:
        line = self.format_message(message)
        with self.lock:
            if self.closed:
                return
            self.out.write(line)
            if message.type == "STATE":
                self.out.flush()

    def write_lines(self, lines: Iterable[bytes]) -> None:
        """Write whole lines, in one piece."""
        with self.lock:
            if not self.closed:
                self.out.write(b"".join(lines))

    def checkpoint(self, lines: Iterable[bytes], advance: Callable[[], dict[str, t.Any]]) -> None:
        """Write records, then advance bookmarks and write the resulting STATE, atomically."""
        with self.lock:
            if self.closed:
                return
            self.out.write(b"".join(lines))
            state = advance()
            self.out.write(encode_line({"type": "STATE", "value": state}))
            self.out.flush()

    def flush(self) -> None:
        """Push buffered lines to the reader."""
        with self.lock:
            self.out.flush()

    def close(self, last: Callable[[], object], timeout: float) -> bool:
        """Write the last lines (`last`), push all to the reader, then nothing more: the end.

        False when the reader took none of it within `timeout` seconds (it no longer reads, or
        stdout is gone): the lines are left unwritten, and the caller must not wait for stdout.
        """
        written, ended = threading.Event(), threading.Event()

        def write_last() -> None:  # in a thread: a write to a full pipe blocks until read
            with self.lock:
                try:
                    last()
                    self.out.flush()
                    written.set()
                except OSError:  # the reader is gone
                    pass
                finally:
                    self.closed = True
                    ended.set()

        threading.Thread(target=write_last, name="last-state", daemon=True).start()
        ended.wait(timeout)
        return written.is_set()
