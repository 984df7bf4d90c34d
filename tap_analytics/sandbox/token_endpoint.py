"""POST /oauth/v1/token: the OAuth 2.0 client credentials grant (RFC 6749 section 4.4)."""

from __future__ import annotations

import base64
import binascii
import hmac
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, unquote_plus

from tap_analytics.sandbox.responses import Request, Response, json_response, oauth_error

if TYPE_CHECKING:
    from tap_analytics.sandbox.faults import FaultRule
    from tap_analytics.sandbox.tokens import TokenRegistry


@dataclass(frozen=True)
class ClientCredentials:
    """The one client the sandbox knows."""

    client_id: str
    client_secret: str

    def accepts(self, client_id: str, client_secret: str) -> bool:
        """Return whether the pair is this client's."""
        return hmac.compare_digest(client_id, self.client_id) and hmac.compare_digest(
            client_secret, self.client_secret
        )


def form_fields(request: Request) -> dict[str, str]:
    """Return the form fields of the body (last value wins)."""
    return dict(parse_qsl(request.body.decode("utf-8", "replace"), keep_blank_values=True))


def basic_credentials(request: Request) -> tuple[str, str] | None:
    """Return (client_id, client_secret) from an HTTP Basic header, if there is one."""
    scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return ("", "")
    client_id, _, client_secret = decoded.partition(":")
    return unquote_plus(client_id), unquote_plus(client_secret)


def auth_method(request: Request) -> str | None:
    """Return how a token request authenticates the client: basic, body or None."""
    if basic_credentials(request) is not None:
        return "basic"
    fields = form_fields(request)
    return "body" if "client_id" in fields or "client_secret" in fields else None


def rejected_token_request(request: Request, client: ClientCredentials) -> Response | None:
    """Return the RFC 6749 error for a token request that gets no token, else None."""
    fields = form_fields(request)
    grant_type = fields.get("grant_type")
    basic = basic_credentials(request)
    client_id, client_secret = basic or (fields.get("client_id"), fields.get("client_secret"))
    error = None
    if request.method != "POST":
        error = (405, "invalid_request", "use POST")
    elif not grant_type:
        error = (400, "invalid_request", "grant_type is missing")
    elif grant_type != "client_credentials":
        error = (400, "unsupported_grant_type", f"{grant_type} is not supported")
    elif basic is not None and "client_secret" in fields:
        error = (400, "invalid_request", "use one client authentication method")
    elif client_id is None or client_secret is None:
        error = (401, "invalid_client", "client authentication is missing")
    elif not client.accepts(client_id, client_secret):
        error = (401, "invalid_client", "unknown client or wrong secret")
    return None if error is None else oauth_error(*error)


def token_response(
    request: Request,
    client: ClientCredentials,
    tokens: TokenRegistry,
    ttl: int,
    rule: FaultRule | None = None,
) -> Response:
    """Answer a token request (a fault rule of an answer kind spoils the success body)."""
    rejection = rejected_token_request(request, client)
    if rejection is not None:
        return rejection
    fields = form_fields(request)
    payload: dict[str, str | int] = {
        "access_token": tokens.issue(ttl),
        "token_type": "bearer",
        "expires_in": ttl,
    }
    if fields.get("scope"):
        payload["scope"] = fields["scope"]
    if rule is None or rule.kind == "repeat_cursor":
        return json_response(200, payload, [("Cache-Control", "no-store")])
    if rule.kind == "truncated":
        return Response(200, json.dumps(payload).encode(), action="truncate")
    del payload["access_token"]  # empty, no_data, data_not_list, missing_field
    return json_response(200, payload)
