"""How a run ends: each outcome's exit code, and its verdict as the last line on stderr."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import typing as t

from singer_sdk.exceptions import ConfigValidationError

from tap_analytics.errors import (
    InvalidCatalogError,
    InvalidStateError,
    SyncIncompleteError,
    SyncInterruptedError,
)
from tap_analytics.sync_all import STOP_GRACE

if t.TYPE_CHECKING:
    from collections.abc import Iterator


@contextlib.contextmanager
def verdict(logger: logging.Logger) -> Iterator[None]:
    """Turn how the run inside ended into its exit code and one line, with no traceback."""
    try:
        yield
    except ConfigValidationError as exc:
        # The SDK would log each error, then a generic last line; one line says it all.
        exit_with(logger, 1, "%s", exc)
    except InvalidStateError as exc:
        exit_with(logger, 1, "Invalid state: %s", exc)
    except InvalidCatalogError as exc:
        exit_with(logger, 1, "Invalid catalog: %s", exc)
    except SyncIncompleteError as exc:
        exit_with(logger, 1, "Sync incomplete: %s", exc)
    except SyncInterruptedError as exc:
        if exc.stdout_stuck:
            exit_with(
                logger,
                128 + exc.signum,
                "Sync interrupted by signal %d; the last STATE could not be written: stdout "
                "took nothing for %.0f s (its reader stopped reading). Rerun with the last STATE "
                "the target received",
                exc.signum,
                STOP_GRACE,
                stdout_stuck=True,
            )
        exit_with(
            logger,
            128 + exc.signum,
            "Sync interrupted by signal %d; the last STATE written marks what was "
            "delivered: rerun with it to resume",
            exc.signum,
        )


def exit_with(
    logger: logging.Logger, code: int, message: str, *args: object, stdout_stuck: bool = False
) -> t.NoReturn:
    """Log the verdict as the last line on stderr, without a traceback, and exit."""
    logger.error(message, *args)
    # A stream stuck in a request when the run stopped (a daemon thread) may still finish:
    # nothing it logs may follow the verdict.
    logging.disable()
    if stdout_stuck:  # an exit through the interpreter would flush stdout: wait for its reader
        os._exit(code)
    sys.exit(code)
