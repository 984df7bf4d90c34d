"""A careless server: error answers that quote the credentials of the request."""

from __future__ import annotations

import json
from http import HTTPStatus

from tap_analytics.sandbox.faults import TOKEN_PATH
from tap_analytics.sandbox.responses import JSON, Request, Response
from tap_analytics.sandbox.token_endpoint import basic_credentials, form_fields


def submitted_credentials(request: Request) -> str:
    """Return what a token request submitted: its form, with HTTP Basic credentials decoded."""
    fields = form_fields(request)
    basic = basic_credentials(request)
    if basic is not None:
        fields["client_id"], fields["client_secret"] = basic
    return "&".join(f"{name}={value}" for name, value in fields.items())


def with_credentials_quoted(request: Request, response: Response) -> Response:
    """Return an error answer that repeats the request's credentials; other answers unchanged."""
    is_error = response.status >= HTTPStatus.BAD_REQUEST and response.action == "send"
    if not is_error or response.content_type != JSON:
        return response
    payload = json.loads(response.body)
    if request.path == TOKEN_PATH:
        quote = f"received {submitted_credentials(request)}"
    else:
        quote = f"received Authorization: {request.headers.get('authorization', '(none)')}"
    if "error_description" in payload:  # RFC 6749 error body of the token endpoint
        payload["error_description"] += f" ({quote})"
    else:
        payload["error"]["message"] += f" ({quote})"
    response.body = json.dumps(payload).encode()
    return response
