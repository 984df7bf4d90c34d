"""Redaction: the client secret and every access token of the run become *** in all output."""

from __future__ import annotations

import json
import logging
import re
import threading
from urllib.parse import quote, quote_plus

from typing_extensions import override

MASK = "***"


class Secrets:
    """The secret values of this process, and one pattern that finds any of them in text."""

    def __init__(self) -> None:
        """Start with nothing to hide."""
        self._lock = threading.Lock()
        self._values: set[str] = set()
        self._pattern: re.Pattern[str] | None = None

    def add(self, value: object) -> None:
        """Hide a value from now on, also as a server may quote it (URL- or JSON-escaped)."""
        if not isinstance(value, str) or not value:
            return
        spellings = {value, quote(value, safe=""), quote_plus(value), json.dumps(value)[1:-1]}
        with self._lock:
            if spellings <= self._values:
                return
            self._values |= spellings
            longest_first = sorted(self._values, key=len, reverse=True)
            self._pattern = re.compile("|".join(map(re.escape, longest_first)))

    def redact(self, text: str) -> str:
        """Return `text` with every secret value replaced by ***."""
        pattern = self._pattern
        return text if pattern is None else pattern.sub(MASK, text)


# One set per process: log handlers are process-wide too.
SECRETS = Secrets()
_traceback_formatter = logging.Formatter()


def hide(value: object) -> None:
    """Redact a value (a client secret, an access token) from every later line."""
    SECRETS.add(value)


def redact(text: str) -> str:
    """Return `text` without any secret value of the run."""
    return SECRETS.redact(text)


QUOTE_LIMIT = 300  # characters of server-controlled text a message quotes


def quoted(text: str) -> str:
    """Server-controlled text made fit for a message: no secret, one short printable line."""
    # Redacted whole before it is cut: a cut could leave part of a secret unrecognised.
    clean = redact(text)
    if len(clean) > QUOTE_LIMIT:
        clean = clean[: QUOTE_LIMIT - 3] + "..."
    return "".join(char if char.isprintable() else "?" for char in clean)


class RedactingFilter(logging.Filter):
    """Rewrites a log record's message, traceback and stack so that no secret is printed."""

    @override
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if record.exc_info and record.exc_info[1] is not None:
            traceback = _traceback_formatter.formatException(record.exc_info)
            if redact(traceback) != traceback:
                # Formatters render exc_info themselves: move the traceback into the message.
                message = f"{message}\n{traceback}"
                record.exc_info, record.exc_text = None, None
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


def install() -> None:
    """Put the redacting filter on every handler of every logger (the root one included)."""
    loggers = [logging.root, *logging.root.manager.loggerDict.values()]
    for logger in loggers:
        for handler in getattr(logger, "handlers", ()):
            if not any(isinstance(f, RedactingFilter) for f in handler.filters):
                handler.addFilter(RedactingFilter())
