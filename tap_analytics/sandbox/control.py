"""The /_sandbox/ control endpoints that tests use to steer a sandbox in another process."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from tap_analytics.sandbox.faults import InvalidFaultError
from tap_analytics.sandbox.responses import Request, Response, api_error, json_response

if TYPE_CHECKING:
    from collections.abc import Callable

    from tap_analytics.sandbox.app import SandboxApp

RECORDS_PREFIX = "/_sandbox/records/"


def json_body(request: Request) -> Any:  # noqa: ANN401
    """Decode the JSON body of a control request (an empty body is an empty object)."""
    return json.loads(request.body) if request.body.strip() else {}


def faults_response(app: SandboxApp, request: Request) -> Response:
    """Add, list or clear fault rules."""
    if request.method == "DELETE":
        app.faults.clear()
        return json_response(200, {"faults": []})
    if request.method == "POST":
        body = json_body(request)
        specs = body["faults"] if isinstance(body, dict) and "faults" in body else [body]
        for spec in specs:
            app.add_fault(spec)
    return json_response(200, {"faults": [rule.describe() for rule in app.faults.rules]})


def update_response(app: SandboxApp, request: Request) -> Response:
    """Update records: {"resource": ..., "count": n} or {"resource": ..., "ids": [...]}."""
    body = json_body(request)
    updated = app.update_records(body.get("resource"), body.get("count"), body.get("ids"))
    return json_response(200, {"updated": updated})


def add_response(app: SandboxApp, request: Request) -> Response:
    """Add records: {"resource": ..., "count": n}."""
    body = json_body(request)
    return json_response(200, {"added": app.add_records(body.get("resource"), body.get("count"))})


def requests_response(app: SandboxApp, request: Request) -> Response:
    """List or clear the request log."""
    if request.method == "DELETE":
        app.request_log.clear()
    return json_response(200, {"requests": list(app.request_log)})


def records_response(app: SandboxApp, request: Request) -> Response:
    """Return every record of a resource as served, in API order."""
    bodies = app.served_bodies(request.path[len(RECORDS_PREFIX) :])
    return Response(200, b'{"data":[' + b",".join(bodies) + b"]}")


def revoke_response(app: SandboxApp, _request: Request) -> Response:
    """Revoke every token issued so far."""
    app.tokens.revoke_all()
    return json_response(200, {"revoked": True})


def counts_response(app: SandboxApp, _request: Request) -> Response:
    """Return the number of records of each resource."""
    return json_response(200, app.current_counts())


def config_response(app: SandboxApp, request: Request) -> Response:
    """Change settings (POST) and return them all."""
    settings = json_body(request) if request.method == "POST" else {}
    return json_response(200, app.configure(**settings))


ROUTES: dict[tuple[str, str], Callable[[SandboxApp, Request], Response]] = {
    ("GET", "/_sandbox/faults"): faults_response,
    ("POST", "/_sandbox/faults"): faults_response,
    ("DELETE", "/_sandbox/faults"): faults_response,
    ("POST", "/_sandbox/update"): update_response,
    ("POST", "/_sandbox/add"): add_response,
    ("POST", "/_sandbox/revoke"): revoke_response,
    ("GET", "/_sandbox/requests"): requests_response,
    ("DELETE", "/_sandbox/requests"): requests_response,
    ("GET", "/_sandbox/counts"): counts_response,
    ("GET", "/_sandbox/config"): config_response,
    ("POST", "/_sandbox/config"): config_response,
}


def control_response(app: SandboxApp, request: Request) -> Response:
    """Route a control request; bad input gets 400 invalid_parameter."""
    path = request.path.rstrip("/")
    route = ROUTES.get((request.method, path))
    is_records = path.startswith(RECORDS_PREFIX) and path[len(RECORDS_PREFIX) :] in app.counts
    if route is None and request.method == "GET" and is_records:
        route = records_response
    if route is None:
        return api_error(404, f"no such control endpoint: {request.method} {request.path}")
    try:
        return route(app, request)
    except (InvalidFaultError, KeyError, TypeError, ValueError, AttributeError) as error:
        return api_error(400, f"{type(error).__name__}: {error}")
