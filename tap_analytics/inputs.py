"""The files a run is given (--state): read and checked before any request, refused in a line."""

from __future__ import annotations

import io
import json
import typing as t

from tap_analytics.state import read_state_file

if t.TYPE_CHECKING:
    import logging


def checked_state_file(state_file: t.IO[str], logger: logging.Logger) -> t.IO[str]:
    """The state a --state file holds, as a file; InvalidStateError if it cannot be resumed."""
    name = getattr(state_file, "name", "the state file")
    state, note = read_state_file(state_file.read(), name)
    if note:
        logger.info("%s", note)
    return io.StringIO(json.dumps(state))
