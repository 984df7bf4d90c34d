"""HTTP requests and responses as the sandbox sees them, and the contract's error bodies."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

JSON = "application/json"
ERROR_CODES = {
    400: "invalid_parameter",
    401: "invalid_token",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    429: "rate_limited",
    500: "internal",
    502: "unavailable",
    503: "unavailable",
    504: "unavailable",
}
INVALID_TOKEN_CHALLENGE = ("WWW-Authenticate", 'Bearer error="invalid_token"')


@dataclass
class Request:
    """A parsed HTTP/1.1 request."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # names in lower case
    body: bytes = b""
    keep_alive: bool = True


@dataclass
class Response:
    """A response; `action` can also drop the connection or truncate the body."""

    status: int
    body: bytes = b""
    content_type: str = JSON
    headers: list[tuple[str, str]] = field(default_factory=list)
    # "send", "drop" (close without answering), "truncate", "hang", "trickle" (the body a
    # byte every `pace` seconds) or "trickle_head" (the head too)
    action: str = "send"
    pace: float = 0.0


@dataclass
class Deferred:
    """A response that is computed after waiting `delay` seconds (without blocking others)."""

    delay: float
    then: Callable[[], Reply]


Reply = Response | Deferred


def json_response(
    status: int, payload: object, headers: list[tuple[str, str]] | None = None
) -> Response:
    """Return a JSON response."""
    return Response(status, json.dumps(payload).encode(), headers=headers or [])


def error_code(status: int) -> str:
    """Return the contract's error code for an HTTP status."""
    if status in ERROR_CODES:
        return ERROR_CODES[status]
    return "internal" if status >= HTTPStatus.INTERNAL_SERVER_ERROR else "bad_request"


def api_error(
    status: int, message: str, retry_after: int | None = None, code: str | None = None
) -> Response:
    """Return the contract's error body {"error": {"code", "message"}} with its headers."""
    headers = [INVALID_TOKEN_CHALLENGE] if status == HTTPStatus.UNAUTHORIZED else []
    if retry_after is not None:
        headers.append(("Retry-After", str(retry_after)))
    payload = {"error": {"code": code or error_code(status), "message": message}}
    return json_response(status, payload, headers)


def oauth_error(
    status: int, error: str, description: str, retry_after: int | None = None
) -> Response:
    """Return an RFC 6749 section 5.2 error body."""
    headers = [("Retry-After", str(retry_after))] if retry_after is not None else []
    if error == "invalid_client":
        headers.append(("WWW-Authenticate", 'Basic realm="sandbox"'))
    return json_response(status, {"error": error, "error_description": description}, headers)
