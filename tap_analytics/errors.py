"""Errors the tap raises, each with a message that says what failed and what to do."""

from __future__ import annotations

from singer_sdk.exceptions import FatalAPIError, RetriableAPIError


class AnalyticsAPIError(FatalAPIError):
    """A request failed for good: the message names the stream, status, code and path."""


class InvalidTokenError(AnalyticsAPIError):
    """The API rejected the access token (401 invalid_token)."""

    def __init__(self, message: str, token: str | None) -> None:
        """Keep the rejected token so that only that token is discarded."""
        super().__init__(message)
        self.token = token


class TokenRequestError(AnalyticsAPIError):
    """No token: the endpoint refused the credentials, or kept failing."""


class TokenRevokedError(AnalyticsAPIError):
    """Every fresh token was rejected too: the budget of repeats is spent."""


class NotJSONError(RetriableAPIError):
    """A 200 answer whose body is not JSON: a proxy or a login page, or the wrong URL."""


class BadPageError(AnalyticsAPIError):
    """A 200 response whose body breaks the contract."""


class SyncIncompleteError(Exception):
    """At least one selected stream was not delivered in full."""


class SyncInterruptedError(BaseException):
    """SIGTERM or SIGINT arrived: stop, save the last safe state, exit non-zero."""

    def __init__(self, signum: int) -> None:
        """Remember which signal stopped the run."""
        super().__init__(f"interrupted by signal {signum}")
        self.signum = signum
        self.stdout_stuck = False  # the last STATE could not be written: nobody reads stdout


class InvalidStateError(Exception):
    """The state given to the run cannot be resumed from."""


class InvalidCatalogError(Exception):
    """The catalog given to the run cannot be used."""


def json_type(value: object) -> str:
    """Name a decoded JSON value's type as JSON does."""
    names = {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}
    return names.get(type(value), "number")
