"""Opaque keyset cursors: base64 of a (resource, updated_at, id, nonce, repeat) position."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

# Two fixed leading bytes make every cursor start with "+/", and padding to a length of
# 2 (mod 3) ends it with "=": clients that forget to URL-encode cursors break at once.
MAGIC = b"\xfb\xff"
VERSION = "k1"
FIELD_COUNT = 6
START = -1  # the updated_at of the position before every record


class InvalidCursorError(ValueError):
    """The client sent something that is not a cursor of this resource."""


@dataclass(frozen=True)
class Cursor:
    """A position in (updated_at, id) order; nonce and repeat only change the encoding."""

    resource: str
    updated: int
    record_id: str
    nonce: int = 0
    repeat: bool = False

    def encode(self) -> str:
        """Return the opaque, URL-unsafe base64 text of this cursor."""
        text = "|".join(
            (VERSION, self.resource, str(self.updated), self.record_id, str(self.nonce),
             "r" if self.repeat else "-")
        )  # fmt: skip
        payload = MAGIC + text.encode()
        payload += b" " * ((2 - len(payload)) % 3)
        return base64.b64encode(payload).decode("ascii")


def decode_cursor(text: str, resource: str) -> Cursor:
    """Decode a cursor sent by a client; raise InvalidCursorError if it is not one of ours."""
    try:
        payload = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError) as error:
        msg = "after is not a valid cursor"
        raise InvalidCursorError(msg) from error
    parts = payload[len(MAGIC) :].rstrip(b" ").decode("utf-8", "replace").split("|")
    if not payload.startswith(MAGIC) or len(parts) != FIELD_COUNT or parts[0] != VERSION:
        msg = "after is not a valid cursor"
        raise InvalidCursorError(msg)
    _, cursor_resource, updated, record_id, nonce, repeat = parts
    if cursor_resource != resource:
        msg = f"after is a cursor of {cursor_resource}, not of {resource}"
        raise InvalidCursorError(msg)
    try:
        return Cursor(resource, int(updated), record_id, int(nonce), repeat == "r")
    except ValueError as error:
        msg = "after is not a valid cursor"
        raise InvalidCursorError(msg) from error
