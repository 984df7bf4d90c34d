"""The sandbox application: its state, and the routing of every request."""

from __future__ import annotations

import json
import time
from collections import deque
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from tap_analytics.sandbox import listing
from tap_analytics.sandbox.control import control_response
from tap_analytics.sandbox.datadir import DataDir
from tap_analytics.sandbox.echo import with_credentials_quoted
from tap_analytics.sandbox.faults import (
    ANSWER_KINDS,
    ARRIVAL_KINDS,
    TOKEN_PATH,
    FaultBook,
    FaultRule,
)
from tap_analytics.sandbox.generate import (
    DEFAULT_COUNTS,
    RESOURCES,
    generate_resource,
    new_record,
)
from tap_analytics.sandbox.instants import MICROS, parse_instant
from tap_analytics.sandbox.overrides import (
    FieldOverride,
    apply_overrides,
    parse_override,
    served_body,
)
from tap_analytics.sandbox.ratelimit import DEFAULT_RATE_LIMIT, DEFAULT_RATE_WINDOW, RateWindow
from tap_analytics.sandbox.responses import (
    Deferred,
    Reply,
    Request,
    Response,
    api_error,
    oauth_error,
)
from tap_analytics.sandbox.store import ResourceStore
from tap_analytics.sandbox.token_endpoint import (
    ClientCredentials,
    auth_method,
    rejected_token_request,
    token_response,
)
from tap_analytics.sandbox.tokens import TokenRegistry

if TYPE_CHECKING:
    from pathlib import Path

REPLACING_KINDS = frozenset({"status", "drop", "html", "garbage", "hang", "raw"})
CONTROL_PREFIX = "/_sandbox/"
DATA_PREFIX = "/v1/"
REQUEST_LOG_LIMIT = 100_000
MAX_ADDED = 100_000  # records one /_sandbox/add creates at most
HTML_BODY = (
    b"<!DOCTYPE html><html><body><h1>502 Bad Gateway</h1><p>upstream hiccup</p></body></html>"
)
GARBAGE_BODY = b'{"data": [{"id": "cus_000001", "name": "trunc'
LogEntry = dict[str, Any]


def full_counts(counts: dict[str, int] | None) -> dict[str, int]:
    """Complete per-resource record counts with the defaults; reject unknown resources."""
    merged = dict(DEFAULT_COUNTS)
    for resource, count in (counts or {}).items():
        if resource not in merged:
            msg = f"unknown resource {resource!r}; known: {', '.join(RESOURCES)}"
            raise ValueError(msg)
        if count < 0:
            msg = f"count of {resource} must not be negative"
            raise ValueError(msg)
        merged[resource] = int(count)
    return merged


def switch(name: str, value: object) -> bool:
    """Return a boolean setting; refuse anything but true and false."""
    if not isinstance(value, bool):
        msg = f"{name} is true or false, not {value!r}"
        raise TypeError(msg)
    return value


def bearer_token(request: Request) -> str | None:
    """Return the bearer token of a request, if it carries one."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


class SandboxApp:
    """Everything the sandbox knows; only ever touched from the server's event loop thread."""

    def __init__(  # noqa: PLR0913
        self,
        *,
        counts: dict[str, int] | None = None,
        seed: int = 1,
        client_id: str = "sandbox-client",
        client_secret: str = "sandbox-secret",  # noqa: S107
        token_ttl: int = 3600,
        latency_ms: float = 0,
        rate_limit: int = DEFAULT_RATE_LIMIT,
        rate_window: float = DEFAULT_RATE_WINDOW,
        one_token_per_client: bool = False,
        echo_credentials: bool = False,
        field_overrides: list[dict[str, Any]] | None = None,
        data_dir: Path | str | None = None,
    ) -> None:
        """Configure the sandbox; records are generated on first use."""
        self.counts = full_counts(counts)  # as generated; current_counts() has the additions
        self.seed = seed
        self.client = ClientCredentials(client_id, client_secret)
        self.token_ttl = token_ttl
        self.latency_ms = latency_ms
        self.rate = RateWindow(rate_limit, rate_window)
        self.tokens = TokenRegistry(one_per_client=one_token_per_client)
        self.echo_credentials = echo_credentials
        self.field_overrides = self.parse_overrides(field_overrides or [])
        self.data_dir = None if data_dir is None else DataDir(data_dir, seed, self.counts)
        self.faults = FaultBook()
        self.stores: dict[str, ResourceStore] = {}
        self.request_log: deque[LogEntry] = deque(maxlen=REQUEST_LOG_LIMIT)
        self.in_flight = 0  # requests arrived and not answered yet
        self.last_pages = dict.fromkeys(RESOURCES, 0)

    def store(self, resource: str) -> ResourceStore:
        """Return the records of a resource, generating them the first time."""
        if resource not in self.stores:
            generated = generate_resource(resource, self.seed, self.counts)
            store = ResourceStore(resource, generated)
            for record in self.data_dir.updates_of(resource) if self.data_dir else []:
                store.move_to_end(record)
            self.stores[resource] = store
        return self.stores[resource]

    def warm(self) -> None:
        """Generate every resource now rather than on its first request."""
        for resource in RESOURCES:
            self.store(resource)

    def add_fault(self, spec: dict[str, Any]) -> dict[str, Any]:
        """Append a fault rule; raise InvalidFaultError if it is not valid."""
        return self.faults.add(spec).describe()

    def update_records(
        self, resource: str, count: int | None = None, ids: list[str] | None = None
    ) -> list[dict[str, Any]]:
        """Move records to the end of the order with a visible change; return them."""
        if resource not in RESOURCES:
            msg = f"unknown resource {resource!r}"
            raise KeyError(msg)
        store = self.store(resource)
        chosen = list(ids) if ids is not None else store.ids_spread(count or 0)
        overrides = self.overrides_of(resource)
        not_before = max((o.since for o in overrides if o.ids is None), default=None)
        updated = store.update(chosen, not_before)
        if self.data_dir is not None:
            self.data_dir.record_update(resource, updated)
        return [
            json.loads(served_body(record, parse_instant(record["updated_at"]), overrides))
            for record in updated
        ]

    def add_records(self, resource: str, count: object) -> list[dict[str, Any]]:
        """Create `count` records after every other one (new ids, latest updated_at)."""
        if resource not in RESOURCES:
            msg = f"unknown resource {resource!r}"
            raise KeyError(msg)
        if not isinstance(count, int) or isinstance(count, bool) or not 1 <= count <= MAX_ADDED:
            msg = f"count is a whole number from 1 to {MAX_ADDED}, not {count!r}"
            raise ValueError(msg)
        store = self.store(resource)
        overrides = self.overrides_of(resource)
        not_before = max((o.since for o in overrides if o.ids is None), default=None)
        added = []
        for _ in range(count):
            updated = store.latest_instant(not_before)
            body = new_record(resource, self.seed, self.counts, len(store) + 1, updated)
            added.append(json.loads(body))
            store.move_to_end(added[-1])
        if self.data_dir is not None:
            self.data_dir.record_update(resource, added)
        return [
            json.loads(served_body(record, parse_instant(record["updated_at"]), overrides))
            for record in added
        ]

    def current_counts(self) -> dict[str, int]:
        """The number of records of each resource now, added ones included."""
        return {
            resource: len(self.stores[resource]) if resource in self.stores else count
            for resource, count in self.counts.items()
        }

    def served_bodies(self, resource: str) -> list[bytes]:
        """Return every record of a resource as served (overrides applied), in API order."""
        if resource not in RESOURCES:
            msg = f"unknown resource {resource!r}"
            raise KeyError(msg)
        store = self.store(resource)
        return apply_overrides(store.bodies, store.updated, store.ids, self.overrides_of(resource))

    def records(self, resource: str) -> list[dict[str, Any]]:
        """Return the current records of a resource as served, in API order."""
        return [json.loads(body) for body in self.served_bodies(resource)]

    def parse_overrides(self, specs: list[dict[str, Any]]) -> list[FieldOverride]:
        """Validate field override objects; a missing `since` is now."""
        if not isinstance(specs, list):
            msg = f"field_overrides is a list, not {specs!r}"
            raise TypeError(msg)
        now = time.time_ns() // (1_000_000_000 // MICROS)
        return [parse_override(spec, RESOURCES, now) for spec in specs]

    def overrides_of(self, resource: str) -> list[FieldOverride]:
        """Return the field overrides of one resource, in the order they were given."""
        return [override for override in self.field_overrides if override.resource == resource]

    def configure(  # noqa: PLR0913
        self,
        *,
        latency_ms: float | None = None,
        token_ttl: int | None = None,
        rate_limit: int | None = None,
        rate_window: float | None = None,
        one_token_per_client: bool | None = None,
        echo_credentials: bool | None = None,
        field_overrides: list[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """Change settings at run time (field_overrides replaces the list); return them all."""
        overrides = None if field_overrides is None else self.parse_overrides(field_overrides)
        if latency_ms is not None:
            self.latency_ms = float(latency_ms)
        if token_ttl is not None:
            self.token_ttl = int(token_ttl)
        if rate_limit is not None or rate_window is not None:
            self.rate.reconfigure(
                None if rate_limit is None else int(rate_limit),
                None if rate_window is None else float(rate_window),
            )
        if one_token_per_client is not None:
            self.tokens.one_per_client = switch("one_token_per_client", one_token_per_client)
        if echo_credentials is not None:
            self.echo_credentials = switch("echo_credentials", echo_credentials)
        if overrides is not None:
            self.field_overrides = overrides
        return self.settings()

    def settings(self) -> dict[str, Any]:
        """Return every setting that configure() changes."""
        return {
            "latency_ms": self.latency_ms,
            "token_ttl": self.token_ttl,
            "rate_limit": self.rate.limit,
            "rate_window": self.rate.window_seconds,
            "one_token_per_client": self.tokens.one_per_client,
            "echo_credentials": self.echo_credentials,
            "field_overrides": [override.describe() for override in self.field_overrides],
        }

    def handle(self, request: Request) -> Reply:
        """Answer any request: control endpoints, the token endpoint or the data endpoints."""
        if request.path.startswith(CONTROL_PREFIX):
            return control_response(self, request)
        entry: LogEntry = {
            "method": request.method,
            "path": request.path,
            "query": request.query,
            "status": None,
            "auth": None,
            "token": bearer_token(request),
            "time": time.time(),
            "in_flight": self.in_flight + 1,  # this one and those not answered yet
        }
        self.in_flight += 1
        if request.path == TOKEN_PATH:
            entry["auth"] = auth_method(request)
        elif entry["token"] is not None:
            entry["auth"] = "bearer"
        self.request_log.append(entry)
        return self.finish(request, entry, self.arrive(request))

    def finish(self, request: Request, entry: LogEntry, reply: Reply) -> Reply:
        """Log the final status of a reply and add the rate-limit headers."""
        if isinstance(reply, Deferred):
            later = reply.then
            return Deferred(reply.delay, lambda: self.finish(request, entry, later()))
        entry["status"] = None if reply.action in {"drop", "hang"} else reply.status
        self.in_flight -= 1
        reply.headers.extend(self.rate.headers())
        if self.echo_credentials:
            return with_credentials_quoted(request, reply)
        return reply

    def arrive(self, request: Request) -> Reply:
        """Apply the rate limit, arrival faults and latency, then answer."""
        if not self.rate.take():
            return self.failure(request.path, 429, self.rate.reset_seconds())
        delay = self.latency_ms / 1000 if request.path.startswith(DATA_PREFIX) else 0.0
        rule = self.faults.fire(request.path, ARRIVAL_KINDS)
        if rule is not None and rule.kind in REPLACING_KINDS:
            return self.replacement(request, rule)
        if rule is not None and rule.kind == "revoke":
            self.tokens.revoke_all()
        if rule is not None and rule.kind == "slow":
            delay += rule.delay
        if rule is not None and rule.kind in {"trickle", "trickle_head"}:
            answer = self.answer(request)
            answer.action, answer.pace = rule.kind, rule.delay
            return answer
        if delay > 0:
            return Deferred(delay, lambda: self.answer(request))
        return self.answer(request)

    def replacement(self, request: Request, rule: FaultRule) -> Response:
        """Return what an arrival fault answers instead of the real response."""
        path = request.path
        if rule.kind == "raw":
            return self.raw_response(request, rule)
        if rule.kind in {"drop", "hang"}:
            return Response(0, action=rule.kind)
        if rule.kind == "html":
            return Response(200, HTML_BODY, content_type="text/html; charset=utf-8")
        if rule.kind == "garbage":
            return Response(200, GARBAGE_BODY)
        failure = self.failure(path, rule.status or 503, rule.retry_after)
        failure.headers.extend((rule.headers or {}).items())
        return failure

    def raw_response(self, request: Request, rule: FaultRule) -> Response:
        """Answer a raw fault: its status, headers, content type and body, placeholders filled."""

        def fill(text: str) -> str:
            # What a careless or hand-written server puts in its answer.
            text = text.replace("{authorization}", request.headers.get("authorization", ""))
            return text.replace("{token}", self.tokens.issue(self.token_ttl))

        body = fill(rule.body or "").encode("latin-1")
        headers = [(name, fill(value)) for name, value in (rule.headers or {}).items()]
        return Response(rule.status or 200, body, fill(rule.content_type), headers)

    def failure(self, path: str, status: int, retry_after: int | None) -> Response:
        """Return an error in the body format of the endpoint that was asked."""
        message = f"sandbox answers {status}"
        if path == TOKEN_PATH and status == HTTPStatus.BAD_REQUEST:
            return oauth_error(status, "invalid_request", message, retry_after)
        if path == TOKEN_PATH and status == HTTPStatus.UNAUTHORIZED:
            return oauth_error(status, "invalid_client", message, retry_after)
        return api_error(status, message, retry_after)

    def answer(self, request: Request) -> Response:
        """Answer the token endpoint or a data endpoint."""
        if request.path == TOKEN_PATH:
            rule = None
            if request.method == "POST" and self.client_would_get_token(request):
                rule = self.faults.fire(request.path, ANSWER_KINDS)
            return token_response(request, self.client, self.tokens, self.token_ttl, rule)
        if not request.path.startswith(DATA_PREFIX):
            return api_error(404, f"no such endpoint: {request.path}")
        return self.list_records(request)

    def list_records(self, request: Request) -> Response:
        """Answer GET /v1/{resource} for a valid token and valid parameters."""
        token = bearer_token(request)
        if token is None or not self.tokens.is_valid(token):
            return api_error(401, "the access token is missing, expired or revoked")
        resource = request.path[len(DATA_PREFIX) :]
        if resource not in RESOURCES:
            return api_error(404, f"no such resource: {resource}")
        if request.method != "GET":
            return api_error(405, "use GET")
        store = self.store(resource)
        try:
            query = listing.parse_query(request, store)
        except listing.InvalidParameterError as error:
            return api_error(400, str(error))
        rule = self.faults.fire(request.path, ANSWER_KINDS)
        shape = self.last_pages[resource] + RESOURCES.index(resource)
        overrides = self.overrides_of(resource)
        response, was_last = listing.list_response(store, request, query, rule, shape, overrides)
        self.last_pages[resource] += was_last
        return response

    def client_would_get_token(self, request: Request) -> bool:
        """Return whether a token request is valid, so answer faults may spoil it."""
        return rejected_token_request(request, self.client) is None
