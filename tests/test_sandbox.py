"""The sandbox API server honours the Analytics API v1 contract, over real HTTP."""

from __future__ import annotations

import contextlib
import itertools
import json
import re
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import pytest
import requests

from tap_analytics.sandbox import SandboxServer, control, faults
from tap_analytics.sandbox.app import SandboxApp

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

pytestmark = pytest.mark.sandbox
CLIENT = ("sandbox-client", "sandbox-secret")
TOKEN_PATH = "/oauth/v1/token"
RESOURCES = ("customers", "sessions", "events", "campaigns", "resource")
FIELDS = {
    "customers": [
        "id", "external_id", "name", "email", "country_code", "plan", "lifetime_value",
        "total_events", "is_active", "tags", "attributes", "created_at", "updated_at",
    ],
    "sessions": [
        "id", "customer_id", "started_at", "ended_at", "duration_seconds", "device_type",
        "browser", "country_code", "landing_page", "referrer", "utm", "page_view_count",
        "updated_at",
    ],
    "events": [
        "id", "customer_id", "session_id", "event_type", "occurred_at", "properties",
        "revenue", "currency", "updated_at",
    ],
    "campaigns": [
        "id", "name", "channel", "status", "budget", "currency", "starts_on", "ends_on",
        "created_at", "updated_at",
    ],
}  # fmt: skip
FIELDS["resource"] = FIELDS["customers"]


def instant(text: str) -> datetime:
    """Parse an RFC 3339 timestamp of the sandbox."""
    return datetime.fromisoformat(text)


def order_key(record: dict[str, Any]) -> tuple[datetime, str]:
    """Return the contract's sort key of a record."""
    return instant(record["updated_at"]), record["id"]


def post(url: str, **kwargs: Any) -> requests.Response:
    """POST with a timeout."""
    timeout = kwargs.pop("timeout", 10)
    return requests.post(url, timeout=timeout, **kwargs)


def get_token(base_url: str, **form: str) -> str:
    """Fetch a token with the client credentials in the body."""
    body = {"grant_type": "client_credentials", "client_id": CLIENT[0], "client_secret": CLIENT[1]}
    response = post(base_url + TOKEN_PATH, data={**body, **form}, timeout=10)
    response.raise_for_status()
    return str(response.json()["access_token"])


class Client:
    """A keep-alive client holding a bearer token."""

    def __init__(self, server: SandboxServer) -> None:
        self.base_url = server.base_url
        self.token = get_token(self.base_url)
        self.session = requests.Session()
        self.session.headers["Authorization"] = "Bearer " + self.token

    def get(self, path: str, **params: Any) -> requests.Response:
        return self.session.get(self.base_url + path, params=params, timeout=30)

    def page(self, resource: str, **params: Any) -> dict[str, Any]:
        response = self.get(f"/v1/{resource}", **params)
        assert response.status_code == 200, response.text
        return dict(response.json())

    def all_pages(self, resource: str, **params: Any) -> list[dict[str, Any]]:
        """Follow next cursors (passed as params, so URL-encoded) until the last page."""
        pages = [self.page(resource, **params)]
        while cursor := next_cursor(pages[-1]):
            pages.append(self.page(resource, **{**params, "after": cursor}))
            assert len(pages) < 10_000
        return pages

    def all_records(self, resource: str, **params: Any) -> list[dict[str, Any]]:
        return [record for page in self.all_pages(resource, **params) for record in page["data"]]


def wait_for(condition: Callable[[], object], what: str, timeout: float = 30) -> None:
    """Poll `condition` until it is true; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting for {what} after {timeout} s")
        time.sleep(0.02)


def pending(server: SandboxServer, path: str) -> list[dict[str, Any]]:
    """Return the logged requests to `path` that have no answer yet."""
    return [e for e in server.request_log() if e["path"] == path and e["status"] is None]


class InBackground:
    """Call a function in a daemon thread; result() joins it and returns or raises."""

    def __init__(self, function: Callable[..., Any], *args: Any) -> None:
        self.outcome: list[Any] = []
        self.thread = threading.Thread(target=self.run, args=(function, *args), daemon=True)
        self.thread.start()

    def run(self, function: Callable[..., Any], *args: Any) -> None:
        try:
            self.outcome.append(function(*args))
        except Exception as error:  # noqa: BLE001 (handed to result())
            self.outcome.append(error)

    def is_alive(self) -> bool:
        return self.thread.is_alive()

    def result(self) -> Any:
        self.thread.join()
        [outcome] = self.outcome
        if isinstance(outcome, Exception):
            raise outcome
        return outcome


def next_cursor(page: dict[str, Any]) -> str | None:
    """Return the next cursor of a page, or None on the last page."""
    following = (page.get("paging") or {}).get("next")
    return following["after"] if following else None


@pytest.fixture(scope="module")
def api() -> Any:
    """One sandbox with the default counts, shared by the read-only tests of this module."""
    with SandboxServer(seed=7) as server:
        yield server


@pytest.fixture(autouse=True)
def clean(request: pytest.FixtureRequest) -> None:
    """Reset faults and the request log of the shared sandbox around each test."""
    if "api" in request.fixturenames:
        server = request.getfixturevalue("api")
        server.clear_faults()
        server.clear_request_log()


@pytest.fixture
def client(api: SandboxServer) -> Client:
    return Client(api)


# --- token endpoint -------------------------------------------------------------------------


def test_token_with_credentials_in_the_form(api):
    response = post(
        api.base_url + TOKEN_PATH,
        data={"grant_type": "client_credentials", "client_id": CLIENT[0],
              "client_secret": CLIENT[1], "scope": "read:customers read:events"},
        timeout=10,
    )  # fmt: skip
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 3600
    assert body["scope"] == "read:customers read:events"
    assert len(body["access_token"]) >= 20
    assert api.request_log()[-1]["auth"] == "body"


def test_token_with_credentials_in_http_basic(api):
    response = post(
        api.base_url + TOKEN_PATH, data={"grant_type": "client_credentials"}, auth=CLIENT
    )
    assert response.status_code == 200
    assert "scope" not in response.json()
    assert api.request_log()[-1]["auth"] == "basic"


def test_every_token_is_new(api):
    assert get_token(api.base_url) != get_token(api.base_url)


@pytest.mark.parametrize(
    ("form", "auth"),
    [
        ({"client_id": CLIENT[0], "client_secret": "wrong"}, None),
        ({"client_id": "someone", "client_secret": CLIENT[1]}, None),
        ({}, ("sandbox-client", "wrong")),
        ({}, None),
    ],
)
def test_bad_client_gets_401_invalid_client(api, form, auth):
    response = post(
        api.base_url + TOKEN_PATH, data={"grant_type": "client_credentials", **form}, auth=auth
    )
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert response.json()["error_description"]


@pytest.mark.parametrize(
    ("grant", "error"),
    [({"grant_type": "password"}, "unsupported_grant_type"), ({}, "invalid_request")],
)
def test_bad_grant_gets_400(api, grant, error):
    response = post(api.base_url + TOKEN_PATH, data=grant, auth=CLIENT)
    assert response.status_code == 400
    assert response.json()["error"] == error


def test_tokens_expire_on_the_server():
    with SandboxServer(counts={"customers": 5}, token_ttl=1) as server:
        issued_after = time.monotonic()
        client = Client(server)
        assert client.get("/v1/customers").status_code == 200
        wait_for(lambda: client.get("/v1/customers").status_code == 401, "the token to expire")
        assert time.monotonic() - issued_after >= 1
        response = client.get("/v1/customers")
        assert response.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'
        assert response.json()["error"]["code"] == "invalid_token"


def test_revoked_tokens_get_401(api, client):
    assert client.get("/v1/customers", limit=1).status_code == 200
    api.revoke_tokens()
    assert client.get("/v1/customers", limit=1).status_code == 401
    fresh = Client(api)
    assert fresh.get("/v1/customers", limit=1).status_code == 200
    assert post(api.base_url + "/_sandbox/revoke", timeout=10).status_code == 200
    assert fresh.get("/v1/customers", limit=1).status_code == 401


@pytest.mark.parametrize("header", [None, "Bearer not-a-token", "Basic abc", "Bearer"])
def test_missing_or_unknown_token_gets_401(api, header):
    headers = {"Authorization": header} if header else {}
    response = requests.get(api.base_url + "/v1/customers", headers=headers, timeout=10)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'
    assert response.json() == {
        "error": {"code": "invalid_token", "message": response.json()["error"]["message"]}
    }


# --- records --------------------------------------------------------------------------------


@pytest.mark.parametrize("resource", RESOURCES)
def test_records_have_exactly_the_contract_fields(client, resource):
    records = client.all_records(resource)
    assert records
    for record in records:
        assert list(record) == FIELDS[resource]
        assert isinstance(record["id"], str)
        assert instant(record["updated_at"]).year == 2024
        for key, value in record.items():
            if key.endswith("_at") and value is not None:
                assert value.endswith("Z")
                assert instant(value) <= instant(record["updated_at"])
                if "." in value:
                    fraction = value.split(".")[1][:-1]
                    assert 1 <= len(fraction) <= 6
                    assert not fraction.endswith("0")


def test_customer_field_types(client):
    records = client.all_records("customers")
    prefixes = {"cus_", "res_"}
    assert {record["id"][:4] for record in records} <= prefixes
    assert any(record["total_events"] > 2**31 for record in records)
    for record in records:
        assert type(record["total_events"]) is int
        assert type(record["is_active"]) is bool
        assert all(isinstance(tag, str) for tag in record["tags"])
        assert all(type(v) in {str, int, float, bool} for v in record["attributes"].values())
        value = record["lifetime_value"]
        assert value is None or round(value, 2) == value
        assert record["plan"] in {None, "free", "pro", "enterprise"}
    for nullable in ("external_id", "name", "email", "country_code", "plan", "lifetime_value"):
        assert any(record[nullable] is None for record in records), nullable


def test_references_point_at_existing_records(client):
    customers = {record["id"] for record in client.all_records("customers")}
    sessions = client.all_records("sessions")
    session_ids = {record["id"] for record in sessions}
    events = client.all_records("events")
    assert {s["customer_id"] for s in sessions} - {None} <= customers
    assert {e["customer_id"] for e in events} - {None} <= customers
    assert {e["session_id"] for e in events} - {None} <= session_ids
    assert any(s["customer_id"] is None for s in sessions)
    assert any(e["session_id"] is None for e in events)


def test_session_event_and_campaign_shapes(client):
    sessions = client.all_records("sessions")
    assert any(s["ended_at"] is None and s["duration_seconds"] is None for s in sessions)
    for session in sessions:
        assert set(session["utm"]) == {"source", "medium", "campaign", "term", "content"}
        assert session["device_type"] in {"desktop", "mobile", "tablet"}
        if session["ended_at"] is not None:
            elapsed = instant(session["ended_at"]) - instant(session["started_at"])
            assert elapsed.total_seconds() == session["duration_seconds"]
    events = client.all_records("events")
    assert any(isinstance(v, (dict, list)) for e in events for v in e["properties"].values())
    assert any(e["revenue"] is not None for e in events)
    campaigns = client.all_records("campaigns")
    assert any(c["ends_on"] is None for c in campaigns)
    for campaign in campaigns:
        assert len(campaign["starts_on"]) == 10
        assert campaign["ends_on"] is None or campaign["ends_on"] > campaign["starts_on"]


def test_data_is_deterministic_per_seed():
    counts = {"customers": 50, "sessions": 50, "events": 50, "campaigns": 10, "resource": 5}
    with SandboxServer(counts=counts, seed=3) as one, SandboxServer(counts=counts, seed=3) as two:
        assert one.records("events") == two.records("events")
    assert SandboxServer(counts=counts, seed=4).records("events") != one.records("events")


def test_counts_are_configurable():
    counts = {"customers": 7, "campaigns": 0}
    with SandboxServer(counts=counts) as server:
        expected = {"customers": 7, "sessions": 500, "events": 500, "campaigns": 0}
        expected["resource"] = 500
        assert server.counts() == expected
        assert requests.get(server.base_url + "/_sandbox/counts", timeout=10).json() == expected
        client = Client(server)
        assert len(client.all_records("customers")) == 7
        assert client.page("campaigns")["data"] == []


# --- order, ties and cursors -------------------------------------------------------------------


@pytest.mark.parametrize("resource", RESOURCES)
def test_order_is_by_instant_then_id(client, resource):
    records = client.all_records(resource, limit=37)
    keys = [order_key(record) for record in records]
    assert keys == sorted(keys)
    assert len({record["id"] for record in records}) == len(records)


def test_mixed_precision_does_not_sort_as_strings(client):
    stamps = [record["updated_at"] for record in client.all_records("customers")]
    assert any("." in stamp for stamp in stamps)
    assert sum("." not in stamp for stamp in stamps) > len(stamps) / 2
    assert stamps != sorted(stamps), "string order must differ from instant order somewhere"


@pytest.mark.parametrize("limit", [100, 3])
def test_page_boundaries_fall_inside_tie_groups(client, limit):
    pages = client.all_pages("customers", limit=limit)
    splits = [
        before
        for before, after in itertools.pairwise(pages)
        if after["data"] and before["data"][-1]["updated_at"] == after["data"][0]["updated_at"]
    ]
    assert splits
    records = [record for page in pages for record in page["data"]]
    assert len(records) == len(client.all_records("customers"))


def test_cursor_is_base64_with_url_unsafe_characters(client):
    page = client.page("customers", limit=5)
    cursor = next_cursor(page)
    assert cursor
    assert set(cursor) & set("+/=")
    link = page["paging"]["next"]["link"]
    assert link == f"{client.base_url}/v1/customers?limit=5&after={quote(cursor, safe='')}"
    followed = client.session.get(link, timeout=10).json()
    assert followed == client.page("customers", limit=5, after=cursor)
    unencoded = client.session.get(f"{client.base_url}/v1/customers?after={cursor}", timeout=10)
    assert unencoded.status_code == 400
    assert unencoded.json()["error"]["code"] == "invalid_parameter"


@pytest.mark.parametrize("cursor", ["nope", "", "+/8=", "Zm9vYmFy"])
def test_invalid_cursor_gets_400(client, cursor):
    response = client.get("/v1/customers", after=cursor)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_parameter"


def test_a_cursor_of_one_resource_is_invalid_for_another(client):
    cursor = next_cursor(client.page("customers", limit=1))
    assert client.get("/v1/sessions", after=cursor).status_code == 400


def test_all_three_last_page_shapes_occur(client):
    shapes = set()
    for _ in range(3):
        last = client.all_pages("campaigns", limit=40)[-1]
        shapes.add(json.dumps(last.get("paging", "absent")))
    assert shapes == {'"absent"', "{}", '{"next": null}'}


def test_pages_carry_an_unknown_top_level_key(client):
    page = client.page("events", limit=2)
    assert set(page) - {"data", "paging"}


# --- parameters -------------------------------------------------------------------------------


def test_updated_since_is_inclusive_and_compared_as_instants(client):
    records = client.all_records("customers")
    target = next(r for r in records[50:] if r["updated_at"] != records[49]["updated_at"])
    stamp = target["updated_at"]
    expected = [r for r in records if instant(r["updated_at"]) >= instant(stamp)]
    spellings = [stamp, stamp.replace("Z", "+00:00")]
    moment = instant(stamp)
    spellings.append(moment.strftime("%Y-%m-%dT%H:%M:%S.%f000Z"))
    spellings.append(moment.astimezone(timezone(timedelta(hours=2))).isoformat())
    for since in spellings:
        assert client.all_records("customers", updated_since=since) == expected, since
    assert client.all_records("customers", updated_since="2030-01-01T00:00:00Z") == []


@pytest.mark.parametrize(
    "since", ["yesterday", "2024-01-01", "2024-13-01T00:00:00Z", "2024-01-01T00:00:00", ""]
)
def test_malformed_updated_since_gets_400(client, since):
    response = client.get("/v1/customers", updated_since=since)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_parameter"


@pytest.mark.parametrize("limit", ["0", "101", "-1", "abc", "1.5", ""])
def test_limit_out_of_bounds_gets_400(client, limit):
    response = client.get("/v1/customers", limit=limit)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_parameter"


def test_limit_bounds_and_default(client):
    assert len(client.page("customers", limit=1)["data"]) == 1
    assert len(client.page("customers", limit=100)["data"]) == 100
    assert len(client.page("customers")["data"]) == 100
    assert len(client.page("customers", limit=7, unknown="x")["data"]) == 7


def test_unknown_paths_get_404(client):
    for path in ("/v1/users", "/v2/customers", "/"):
        response = client.get(path)
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"


# --- updates --------------------------------------------------------------------------------


def test_an_update_moves_a_record_to_the_end_with_a_visible_change():
    with SandboxServer(counts={"customers": 40}) as server:
        before = server.records("customers")
        chosen = before[3]["id"]
        [updated] = server.update_records("customers", ids=[chosen])
        after = server.records("customers")
        assert after[-1] == updated
        assert updated["id"] == chosen
        assert updated["name"] == "Updated Name 1"
        assert all(instant(updated["updated_at"]) > instant(r["updated_at"]) for r in before)
        assert [r["id"] for r in after[:-1]] == [r["id"] for r in before if r["id"] != chosen]
        assert Client(server).all_records("customers") == after


@pytest.mark.parametrize("resource", RESOURCES)
def test_updates_by_count_are_spread_over_the_order(resource):
    with SandboxServer(counts={resource: 100}) as server:
        before = [r["id"] for r in server.records(resource)]
        response = post(
            server.base_url + "/_sandbox/update",
            json={"resource": resource, "count": 4},
            timeout=10,
        )
        updated = response.json()["updated"]
        positions = [before.index(r["id"]) for r in updated]
        assert len(set(positions)) == 4
        assert min(positions) < 30
        assert max(positions) > 70
        after = server.records(resource)
        assert [r["id"] for r in after[-4:]] == [r["id"] for r in updated]
        old = {r["id"]: r for r in Client(server).all_records(resource)}
        for record in updated:
            assert old[record["id"]] == record


def test_a_record_updated_mid_pagination_is_returned_again_later():
    with SandboxServer(counts={"customers": 60}) as server:
        client = Client(server)
        first = client.page("customers", limit=10)
        seen, later = first["data"][2]["id"], server.records("customers")[30]["id"]
        server.update_records("customers", ids=[seen, later])
        records = list(first["data"])
        cursor = next_cursor(first)
        while cursor:
            page = client.page("customers", limit=10, after=cursor)
            records.extend(page["data"])
            cursor = next_cursor(page)
        ids = [r["id"] for r in records]
        assert ids.count(seen) == 2
        assert ids.count(later) == 1
        assert ids[-2:] == [seen, later]
        assert set(ids) == {r["id"] for r in server.records("customers")}


def test_update_of_unknown_ids_gets_400(api):
    response = post(
        api.base_url + "/_sandbox/update", json={"resource": "customers", "ids": ["x"]}, timeout=10
    )
    assert response.status_code == 400


# --- additions ------------------------------------------------------------------------------


def add(server: SandboxServer, body: object) -> requests.Response:
    """POST /_sandbox/add."""
    return post(server.base_url + "/_sandbox/add", json=body, timeout=10)


@pytest.mark.parametrize("resource", RESOURCES)
def test_added_records_are_new_ids_after_every_other_record(resource):
    with SandboxServer(counts={resource: 40}, seed=3) as server:
        client = Client(server)
        before = client.all_records(resource)
        newest = max(instant(r["updated_at"]) for r in before)
        response = add(server, {"resource": resource, "count": 3})
        assert response.status_code == 200, response.text
        added = response.json()["added"]
        prefix = before[0]["id"].split("_")[0]
        assert [r["id"] for r in added] == [f"{prefix}_{n:06d}" for n in (41, 42, 43)]
        for record in added:
            assert list(record) == FIELDS[resource]
            assert instant(record["updated_at"]) > newest
            for key, value in record.items():
                if key.endswith("_at") and value is not None:
                    assert instant(value) <= instant(record["updated_at"])
        assert client.all_records(resource) == [*before, *added] == server.records(resource)
        assert server.counts()[resource] == 43
        assert requests.get(server.base_url + "/_sandbox/counts", timeout=10).json()[resource] == 43
        since = {"updated_since": added[0]["updated_at"]}
        assert client.all_records(resource, **since) == added, "an incremental read gets them"


def test_additions_are_the_same_for_the_same_seed_and_differ_from_each_other():
    made = []
    for _ in range(2):
        with SandboxServer(counts={"campaigns": 10}, seed=4) as server:
            made.append(server.add_records("campaigns", 2) + server.add_records("campaigns", 1))
    assert made[0] == made[1]
    assert len({json.dumps({**r, "id": None, "updated_at": None}) for r in made[0]}) == 3


def test_an_added_record_carries_the_field_overrides():
    with SandboxServer(counts={"customers": 5}) as server:
        server.configure(field_overrides=[{"resource": "customers", "name": "tier", "value": 1}])
        (record,) = add(server, {"resource": "customers", "count": 1}).json()["added"]
        assert record["tier"] == 1
        assert Client(server).all_records("customers")[-1] == record


@pytest.mark.parametrize(
    "body",
    [
        {"resource": "nope", "count": 1},
        {"count": 1},
        {"resource": "customers"},
        {"resource": "customers", "count": 0},
        {"resource": "customers", "count": -2},
        {"resource": "customers", "count": "3"},
        {"resource": "customers", "count": True},
        {"resource": "customers", "count": 100_001},
        [1],
    ],
)
def test_a_bad_addition_gets_400_and_adds_nothing(api, body):
    counts = api.counts()
    response = add(api, body)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_parameter"
    assert api.counts() == counts


# --- faults ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "code"),
    [(400, "invalid_parameter"), (403, "forbidden"), (404, "not_found"), (429, "rate_limited"),
     (500, "internal"), (502, "unavailable"), (503, "unavailable")],
)  # fmt: skip
def test_status_faults_answer_the_contract_error(api, client, status, code):
    api.add_fault({"kind": "status", "status": status, "retry_after": 2})
    response = client.get("/v1/customers")
    assert response.status_code == status
    assert response.json()["error"]["code"] == code
    assert response.headers["Retry-After"] == "2"
    assert client.get("/v1/customers").status_code == 200


@pytest.mark.parametrize(
    ("status", "body_error"), [(400, "invalid_request"), (401, "invalid_client"), (503, None)]
)
def test_status_faults_on_the_token_endpoint(api, status, body_error):
    api.add_fault({"kind": "status", "status": status, "path": TOKEN_PATH})
    response = post(
        api.base_url + TOKEN_PATH, data={"grant_type": "client_credentials"}, auth=CLIENT
    )
    assert response.status_code == status
    if body_error:
        assert response.json()["error"] == body_error
    else:
        assert response.json()["error"]["code"] == "unavailable"
    assert get_token(api.base_url)


def test_fault_times_skip_every_and_path(api, client):
    api.add_fault({"kind": "status", "status": 500, "path": "/v1/events", "skip": 1, "times": 2})
    statuses = [client.get("/v1/customers", limit=1).status_code for _ in range(2)]
    statuses += [client.get("/v1/events", limit=1).status_code for _ in range(5)]
    assert statuses == [200, 200, 200, 500, 500, 200, 200]
    api.clear_faults()
    api.add_fault({"kind": "status", "status": 429, "every": 3, "times": -1})
    statuses = [client.get("/v1/sessions", limit=1).status_code for _ in range(9)]
    assert statuses == [200, 200, 429] * 3


def test_faults_fire_in_the_order_they_were_added(api, client):
    api.add_fault({"kind": "status", "status": 503})
    api.add_fault({"kind": "status", "status": 502})
    statuses = [client.get("/v1/customers", limit=1).status_code for _ in range(3)]
    assert statuses == [503, 502, 200]


def test_faults_over_http(api, client):
    base = api.base_url + "/_sandbox/faults"
    rules = {"faults": [{"kind": "status", "status": 500}, {"kind": "html"}]}
    assert post(base, json=rules, timeout=10).status_code == 200
    assert post(base, json={"kind": "nonsense"}, timeout=10).status_code == 400
    assert client.get("/v1/customers").status_code == 500
    assert requests.delete(base, timeout=10).status_code == 200
    assert client.get("/v1/customers").status_code == 200


def test_drop_closes_without_a_response(api, client):
    api.add_fault({"kind": "drop"})
    with pytest.raises(requests.ConnectionError):
        client.get("/v1/customers")
    assert client.get("/v1/customers").status_code == 200
    data_requests = [entry for entry in api.request_log() if entry["path"] == "/v1/customers"]
    assert [entry["status"] for entry in data_requests] == [None, 200]


def test_slow_answers_late(api, client):
    api.add_fault({"kind": "slow", "delay": 1.0, "path": "/v1/sessions"})
    started = time.monotonic()
    assert client.get("/v1/sessions").status_code == 200
    assert time.monotonic() - started >= 1.0


def test_a_waiting_answer_does_not_block_other_connections(sandbox):
    sandbox.add_fault({"kind": "slow", "delay": 600, "path": "/v1/sessions"})
    waiting = InBackground(Client(sandbox).get, "/v1/sessions")
    wait_for(lambda: pending(sandbox, "/v1/sessions"), "the slow request to arrive")
    assert Client(sandbox).get("/v1/customers").status_code == 200
    assert pending(sandbox, "/v1/sessions")
    assert waiting.is_alive()


def test_latency_delays_data_requests_but_not_others():
    with SandboxServer(counts={"customers": 5}, latency_ms=300) as server:
        client = Client(server)
        started = time.monotonic()
        assert client.get("/v1/customers").status_code == 200
        assert time.monotonic() - started >= 0.3
        server.set_latency(2000)
        first = InBackground(client.get, "/v1/customers")
        second = InBackground(Client(server).get, "/v1/customers")
        wait_for(lambda: len(pending(server, "/v1/customers")) == 2, "two delayed requests")
        assert first.result().status_code == second.result().status_code == 200
        server.set_latency(600_000)
        late = Client(server)  # the token endpoint is not delayed
        assert requests.get(server.base_url + "/_sandbox/counts", timeout=10).status_code == 200
        with pytest.raises(requests.exceptions.ReadTimeout):
            late.session.get(server.base_url + "/v1/customers", timeout=1)
        server.set_latency(0)
        assert late.get("/v1/customers").status_code == 200


def test_revoke_fault_answers_401(api, client):
    api.add_fault({"kind": "revoke", "skip": 1})
    assert client.get("/v1/customers").status_code == 200
    response = client.get("/v1/customers")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_token"
    assert client.get("/v1/customers").status_code == 401


def test_empty_fault_keeps_the_position_with_a_new_cursor(api, client):
    expected = client.all_records("customers", limit=50)
    api.add_fault({"kind": "empty", "skip": 2, "times": 2})
    pages = client.all_pages("customers", limit=50)
    cursors = [next_cursor(page) for page in pages]
    assert [len(page["data"]) for page in pages][:5] == [50, 50, 0, 0, 50]
    assert len(set(cursors)) == len(cursors)
    assert [r for page in pages for r in page["data"]] == expected


def test_empty_fault_on_the_first_page(api, client):
    api.add_fault({"kind": "empty"})
    empty = client.page("customers", limit=10)
    assert empty["data"] == []
    assert client.page("customers", limit=10, after=next_cursor(empty)) == client.page(
        "customers", limit=10
    )


def test_html_garbage_no_data_and_data_not_list(api, client):
    api.add_fault({"kind": "html"})
    api.add_fault({"kind": "garbage"})
    api.add_fault({"kind": "no_data"})
    api.add_fault({"kind": "data_not_list"})
    html = client.get("/v1/customers")
    assert html.status_code == 200
    assert html.headers["Content-Type"].startswith("text/html")
    garbage = client.get("/v1/customers")
    assert garbage.status_code == 200
    assert garbage.headers["Content-Type"] == "application/json"
    with pytest.raises(ValueError, match=r"Expecting|Unterminated"):
        garbage.json()
    no_data = client.page("customers")
    assert "data" not in no_data
    assert next_cursor(no_data)
    assert client.page("customers")["data"] == {}


def test_missing_field_removes_a_field_of_the_first_record(api, client):
    api.add_fault({"kind": "missing_field", "field": "updated_at"})
    page = client.page("customers", limit=3)
    assert "updated_at" not in page["data"][0]
    assert all("updated_at" in record for record in page["data"][1:])


def test_repeat_cursor_on_the_first_page_keeps_repeating(api, client):
    api.add_fault({"kind": "repeat_cursor"})
    first = client.page("customers", limit=5)
    cursor = next_cursor(first)
    assert cursor
    second = client.page("customers", limit=5, after=cursor)
    assert next_cursor(second) == cursor


def test_repeat_cursor_on_a_later_page_echoes_the_cursor_sent(api, client):
    cursor = next_cursor(client.page("customers", limit=5))
    api.add_fault({"kind": "repeat_cursor"})
    page = client.page("customers", limit=5, after=cursor)
    assert len(page["data"]) == 5
    assert next_cursor(page) == cursor


def test_truncated_body(api, client):
    api.add_fault({"kind": "truncated"})
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        client.get("/v1/customers")
    assert client.get("/v1/customers").status_code == 200


def test_answer_faults_wait_for_a_request_that_would_succeed(api):
    api.add_fault({"kind": "empty"})
    bad = requests.get(api.base_url + "/v1/customers", timeout=10)
    assert bad.status_code == 401
    assert Client(api).page("customers")["data"] == []


# --- rate limit, request log, control ------------------------------------------------------------


def test_every_response_carries_rate_limit_headers(api, client):
    responses = [
        client.get("/v1/customers"),
        client.get("/v1/customers", limit=0),
        client.get("/v1/nothing"),
        post(api.base_url + TOKEN_PATH, data={"grant_type": "client_credentials"}),
        post(api.base_url + TOKEN_PATH, auth=CLIENT, data={"grant_type": "x"}),
    ]
    for response in responses:
        assert int(response.headers["X-RateLimit-Limit"]) > 0
        assert int(response.headers["X-RateLimit-Remaining"]) >= 0
        assert 0 < int(response.headers["X-RateLimit-Reset"]) <= 60


def test_rate_limit_answers_429_with_retry_after():
    with SandboxServer(counts={"customers": 5}, rate_limit=3, rate_window=2.0) as server:
        window_opened_after = time.monotonic()
        client = Client(server)  # the token request counts too
        responses = [client.get("/v1/customers") for _ in range(3)]
        assert [r.status_code for r in responses] == [200, 200, 429]
        assert [r.headers["X-RateLimit-Remaining"] for r in responses] == ["1", "0", "0"]
        assert 1 <= int(responses[-1].headers["Retry-After"]) <= 2
        assert responses[-1].json()["error"]["code"] == "rate_limited"
        wait_for(lambda: client.get("/v1/customers").status_code == 200, "the next window")
        assert time.monotonic() - window_opened_after >= 2.0
        config = post(
            server.base_url + "/_sandbox/config", json={"rate_limit": 1000}, timeout=10
        ).json()
        assert config["rate_limit"] == 1000


def test_request_log(api, client):
    token = client.token
    client.get("/v1/events", limit=5, updated_since="2024-02-01T00:00:00+00:00", x="1")
    post(api.base_url + TOKEN_PATH, data={"grant_type": "client_credentials"}, auth=CLIENT)
    log = requests.get(api.base_url + "/_sandbox/requests", timeout=10).json()["requests"]
    assert [(entry["method"], entry["path"]) for entry in log] == [
        ("POST", TOKEN_PATH),  # the client fixture's own token
        ("GET", "/v1/events"),
        ("POST", TOKEN_PATH),
    ]
    data = log[1]
    assert data["query"] == {"limit": "5", "updated_since": "2024-02-01T00:00:00+00:00", "x": "1"}
    assert (data["status"], data["auth"], data["token"]) == (200, "bearer", token)
    assert (log[2]["auth"], log[2]["token"], log[2]["status"]) == ("basic", None, 200)
    assert api.request_log() == log
    assert requests.delete(api.base_url + "/_sandbox/requests", timeout=10).json()["requests"] == []
    assert api.request_log() == []


def test_control_records_and_config(api):
    records = requests.get(api.base_url + "/_sandbox/records/campaigns", timeout=10).json()["data"]
    assert records == api.records("campaigns")
    assert len(records) == 100
    config = post(
        api.base_url + "/_sandbox/config", json={"latency_ms": 0, "token_ttl": 3600}, timeout=10
    )
    assert config.json()["token_ttl"] == 3600
    assert post(api.base_url + "/_sandbox/config", json={"x": 1}, timeout=10).status_code == 400
    assert requests.get(api.base_url + "/_sandbox/records/nope", timeout=10).status_code == 404


def test_short_token_ttl_via_config():
    with SandboxServer(counts={"customers": 5}) as server:
        server.configure(token_ttl=1)
        token = post(
            server.base_url + TOKEN_PATH, data={"grant_type": "client_credentials"}, auth=CLIENT
        ).json()
        assert token["expires_in"] == 1


def test_keep_alive_and_connection_close(api, client):
    first = client.get("/v1/customers", limit=1)
    second = client.get("/v1/customers", limit=1)
    assert "close" not in first.headers.get("Connection", "")
    assert second.status_code == 200
    closing = client.session.get(
        api.base_url + "/v1/customers", headers={"Connection": "close"}, timeout=10
    )
    assert closing.headers["Connection"] == "close"


def test_concurrent_clients_page_through_everything(api):
    results: dict[str, int] = {}

    def sync(resource: str) -> None:
        results[resource] = len(Client(api).all_records(resource, limit=50))

    threads = [threading.Thread(target=sync, args=(resource,)) for resource in RESOURCES]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == api.counts()


# --- switches: one token per client, careless error answers, field overrides, hang -------------


def config(server: SandboxServer, **settings: Any) -> dict[str, Any]:
    """POST /_sandbox/config and return every setting."""
    response = post(server.base_url + "/_sandbox/config", json=settings)
    assert response.status_code == 200, response.text
    return dict(response.json())


def test_tokens_stay_valid_when_others_are_issued_by_default(sandbox):
    older, newer = Client(sandbox), Client(sandbox)
    assert older.get("/v1/customers", limit=1).status_code == 200
    assert newer.get("/v1/customers", limit=1).status_code == 200


def test_one_token_per_client_revokes_the_earlier_tokens(sandbox_factory):
    server = sandbox_factory(one_token_per_client=True)
    older = Client(server)
    assert older.get("/v1/customers", limit=1).status_code == 200
    newer = Client(server)
    assert older.get("/v1/customers", limit=1).status_code == 401
    assert newer.get("/v1/customers", limit=1).status_code == 200


def test_one_token_per_client_over_http(sandbox):
    assert config(sandbox)["one_token_per_client"] is False
    assert config(sandbox, one_token_per_client=True)["one_token_per_client"] is True
    older = Client(sandbox)
    Client(sandbox)
    assert older.get("/v1/customers", limit=1).status_code == 401
    config(sandbox, one_token_per_client=False)
    newest = Client(sandbox)
    Client(sandbox)
    assert newest.get("/v1/customers", limit=1).status_code == 200
    assert post(sandbox.base_url + "/_sandbox/config", json={"one_token_per_client": "yes"}
                ).status_code == 400  # fmt: skip


SECRET_SEEN = "wrong-secret-0042"


def bad_token_requests(base_url: str) -> list[requests.Response]:
    """Token requests that fail: a wrong secret in the form, then in HTTP Basic."""
    form = {"grant_type": "client_credentials", "client_id": CLIENT[0]}
    return [
        post(base_url + TOKEN_PATH, data={**form, "client_secret": SECRET_SEEN}),
        post(base_url + TOKEN_PATH, data=form, auth=(CLIENT[0], SECRET_SEEN)),
    ]


def test_error_answers_do_not_quote_credentials_by_default(sandbox):
    for response in bad_token_requests(sandbox.base_url):
        assert response.status_code == 401
        assert SECRET_SEEN not in response.text
    bad = requests.get(
        sandbox.base_url + "/v1/customers", headers={"Authorization": "Bearer tok-77"}, timeout=10
    )
    assert bad.status_code == 401
    assert "tok-77" not in bad.text


def test_echo_credentials_quotes_the_submitted_form_in_token_errors(sandbox_factory):
    server = sandbox_factory(echo_credentials=True)
    for response in bad_token_requests(server.base_url):
        assert response.status_code == 401
        body = response.json()
        assert body["error"] == "invalid_client"
        assert f"client_secret={SECRET_SEEN}" in body["error_description"]
        assert f"client_id={CLIENT[0]}" in body["error_description"]
    server.add_fault({"kind": "status", "status": 400, "path": TOKEN_PATH})
    form = {"grant_type": "client_credentials", "client_id": "me", "client_secret": "s3cr3t"}
    refused = post(server.base_url + TOKEN_PATH, data=form).json()
    assert "client_secret=s3cr3t" in refused["error_description"]


@pytest.mark.parametrize(
    "fault",
    [None, {"kind": "status", "status": 503}, {"kind": "status", "status": 429},
     {"kind": "status", "status": 404}],
)  # fmt: skip
def test_echo_credentials_quotes_the_authorization_header_in_data_errors(sandbox, fault):
    config(sandbox, echo_credentials=True)
    client = Client(sandbox)
    if fault is None:
        sandbox.revoke_tokens()
    else:
        sandbox.add_fault(fault)
    response = client.get("/v1/customers")
    assert response.status_code >= 400
    header = f"Bearer {client.token}"
    assert header in response.json()["error"]["message"]
    config(sandbox, echo_credentials=False)
    careful = Client(sandbox)
    not_found = careful.get("/v1/nothing")
    assert not_found.status_code == 404
    assert careful.token not in not_found.text


def test_echo_credentials_leaves_successful_answers_alone(sandbox):
    config(sandbox, echo_credentials=True)
    client = Client(sandbox)
    page = client.get("/v1/customers", limit=5)
    assert page.status_code == 200
    assert client.token not in page.text


def test_field_override_serves_the_field_on_records_changed_after_it(sandbox):
    before = Client(sandbox).all_records("customers")
    assert all("loyalty_tier" not in record for record in before)
    override = {"resource": "customers", "name": "loyalty_tier", "value": {"tier": "gold"}}
    [described] = config(sandbox, field_overrides=[override])["field_overrides"]
    since = instant(described["since"])
    assert Client(sandbox).all_records("customers") == before
    updated = post(
        sandbox.base_url + "/_sandbox/update", json={"resource": "customers", "count": 3}
    ).json()["updated"]
    changed = {record["id"] for record in updated}
    assert all(instant(record["updated_at"]) >= since for record in updated)
    served = Client(sandbox).all_records("customers")
    carrying = {record["id"] for record in served if "loyalty_tier" in record}
    assert carrying == changed
    assert all(r["loyalty_tier"] == {"tier": "gold"} for r in served if r["id"] in changed)
    controlled = requests.get(sandbox.base_url + "/_sandbox/records/customers", timeout=10)
    assert controlled.json()["data"] == served
    assert served[-3:] == updated


def test_field_override_changes_the_type_of_a_known_field_from_a_moment_on(sandbox_factory):
    plain = sandbox_factory().records("customers")
    since = plain[len(plain) // 2]["updated_at"]
    override = {"resource": "customers", "name": "total_events", "value": "many", "since": since}
    server = sandbox_factory(field_overrides=[override])
    served = Client(server).all_records("customers")
    assert [r["id"] for r in served] == [r["id"] for r in plain]
    for original, record in zip(plain, served, strict=True):
        reached = instant(original["updated_at"]) >= instant(since)
        assert record["total_events"] == ("many" if reached else original["total_events"])
    assert any(record["total_events"] != "many" for record in served)
    assert Client(server).all_records("sessions") == server.records("sessions")


def test_field_override_by_ids_serves_raw_text_and_a_lying_updated_at(sandbox):
    plain = Client(sandbox).all_records("customers")
    exact, late = plain[3]["id"], plain[-1]["id"]
    overrides = [
        {"resource": "customers", "name": "lifetime_value", "value": "1.10", "ids": [exact],
         "raw": True},
        {"resource": "customers", "name": "updated_at", "value": "9999-12-31T23:59:59Z",
         "ids": [late]},
    ]  # fmt: skip
    described = config(sandbox, field_overrides=overrides)["field_overrides"]
    assert [d.get("ids") for d in described] == [[exact], [late]]
    page = Client(sandbox).get("/v1/customers", limit=100).content
    assert b'"lifetime_value":1.10,' in page  # the text as given, not 1.1
    served = Client(sandbox).all_records("customers")
    changed = {r["id"]: r for r in served if r != plain[served.index(r)]}
    assert set(changed) == {exact, late}
    assert changed[late]["updated_at"] == "9999-12-31T23:59:59Z"
    assert [r["id"] for r in served] == [r["id"] for r in plain]  # stored instants order pages
    since = plain[-2]["updated_at"]  # the filter reads the stored instant, not year 9999
    kept = [r["id"] for r in plain if instant(r["updated_at"]) >= instant(since)]
    assert [r["id"] for r in Client(sandbox).all_records("customers", updated_since=since)] == kept
    assert kept[-1] == late


@pytest.mark.parametrize(
    "override",
    [{"resource": "users", "name": "x", "value": 1}, {"resource": "customers", "name": "x"},
     {"resource": "customers", "name": "id", "value": 1},
     {"resource": "customers", "name": "x", "value": 1, "since": "yesterday"},
     {"resource": "customers", "name": "x", "value": 1, "extra": 1}, "customers.x=1",
     {"resource": "customers", "name": "updated_at", "value": "2024-01-01T00:00:00Z"},
     {"resource": "customers", "name": "id", "value": "x", "ids": ["cus_000001"]},
     {"resource": "customers", "name": "x", "value": "{not json", "raw": True},
     {"resource": "customers", "name": "x", "value": 1, "raw": True},
     {"resource": "customers", "name": "x", "value": 1, "ids": "cus_000001"}],
)  # fmt: skip
def test_invalid_field_overrides_get_400_and_change_nothing(sandbox, override):
    response = post(sandbox.base_url + "/_sandbox/config", json={"field_overrides": [override]})
    assert response.status_code == 400
    assert config(sandbox)["field_overrides"] == []


def test_hang_accepts_a_request_and_never_answers():
    server = SandboxServer(counts={"customers": 5}).start()
    try:
        assert post(server.base_url + "/_sandbox/faults", json={"kind": "hang"}).status_code == 200
        hanging = InBackground(Client(server).get, "/v1/customers")
        wait_for(lambda: pending(server, "/v1/customers"), "the request to arrive")
        assert Client(server).get("/v1/customers").status_code == 200
        assert pending(server, "/v1/customers")
        assert hanging.is_alive()
        serving = server.thread
        assert serving is not None
    finally:
        server.stop()
    assert not serving.is_alive()
    with pytest.raises(requests.ConnectionError):
        hanging.result()


# --- data directory ---------------------------------------------------------------------------


def update(server: SandboxServer, body: dict[str, Any]) -> list[dict[str, Any]]:
    """POST /_sandbox/update and return the updated records."""
    response = post(server.base_url + "/_sandbox/update", json=body)
    assert response.status_code == 200, response.text
    return list(response.json()["updated"])


def served_records(server: SandboxServer) -> dict[str, list[dict[str, Any]]]:
    """Every record of every resource, read over HTTP."""
    client = Client(server)
    return {resource: client.all_records(resource) for resource in RESOURCES}


def test_data_dir_keeps_updates_across_restarts(tmp_path):
    counts = {"customers": 40, "sessions": 30, "events": 30, "campaigns": 10, "resource": 20}
    with SandboxServer(counts=counts, seed=5) as plain:
        generated = served_records(plain)
    with SandboxServer(counts=counts, seed=5, data_dir=tmp_path) as first:
        update(first, {"resource": "customers", "count": 3})
        update(first, {"resource": "events", "ids": [generated["events"][0]["id"]]})
        after_first = served_records(first)
    assert after_first != generated
    with SandboxServer(counts=counts, seed=5, data_dir=tmp_path) as second:
        assert served_records(second) == after_first
        updated_again = update(second, {"resource": "customers", "count": 3})
        after_second = served_records(second)
    assert after_second["customers"][-3:] == updated_again
    with SandboxServer(counts=counts, seed=5, data_dir=tmp_path) as third:
        assert served_records(third) == after_second


def test_data_dir_keeps_added_records_across_restarts(tmp_path):
    with SandboxServer(counts={"customers": 20, "events": 10}, data_dir=tmp_path) as first:
        add(first, {"resource": "customers", "count": 2})
        update(first, {"resource": "customers", "count": 1})
        add(first, {"resource": "events", "count": 1})
        kept = served_records(first)
    assert len(kept["customers"]) == 22
    with SandboxServer(counts={"customers": 20, "events": 10}, data_dir=tmp_path) as second:
        assert served_records(second) == kept
        assert second.counts()["customers"] == 22
        (record,) = add(second, {"resource": "customers", "count": 1}).json()["added"]
        assert record["id"] == "cus_000023"


def test_data_dir_of_other_data_is_refused(tmp_path):
    SandboxServer(counts={"customers": 5}, seed=1, data_dir=tmp_path)
    with pytest.raises(ValueError, match=r"made with seed 1 \(not 2\):"):
        SandboxServer(counts={"customers": 5}, seed=2, data_dir=tmp_path)
    with pytest.raises(ValueError, match=r"made with counts \{\"customers\": 5, .*\(not .*6"):
        SandboxServer(counts={"customers": 6}, seed=1, data_dir=tmp_path)


def test_data_dir_survives_a_half_written_update(tmp_path):
    with SandboxServer(counts={"customers": 20}, data_dir=tmp_path) as first:
        update(first, {"resource": "customers", "count": 2})
        kept = first.records("customers")
    journal = next(path for path in tmp_path.iterdir() if path.suffix == ".jsonl")
    with journal.open("a") as half_written:
        half_written.write('{"resource": "customers", "rec')
    with SandboxServer(counts={"customers": 20}, data_dir=tmp_path) as second:
        assert Client(second).all_records("customers") == kept
        update(second, {"resource": "customers", "count": 1})
        kept = second.records("customers")
    with SandboxServer(counts={"customers": 20}, data_dir=tmp_path) as third:
        assert third.records("customers") == kept


# --- command line ---------------------------------------------------------------------------


@contextlib.contextmanager
def sandbox_cli(*arguments: str) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """Run `tap-analytics-sandbox` on a free port; yield it and the base URL it announces."""
    command = [sys.executable, "-m", "tap_analytics.sandbox", "--port", "0", *arguments]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as process:
        try:
            assert process.stdout is not None
            line = process.stdout.readline()
            assert line.startswith("sandbox listening on http://127.0.0.1:"), line
            yield process, line.split()[-1]
        finally:
            if process.poll() is None:
                process.kill()


def stop(process: subprocess.Popen[str], signum: int = signal.SIGTERM) -> None:
    """Signal a sandbox process; it must exit 0 without another word."""
    process.send_signal(signum)
    assert process.wait(timeout=30) == 0
    assert process.stdout is not None
    assert process.stdout.read() == ""


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_cli_announces_serves_and_stops_on_signal(tmp_path: Path, signum):
    port_file = tmp_path / "url"
    arguments = ("--records", "30", "--customers", "12", "--port-file", str(port_file))
    with sandbox_cli(*arguments) as (process, base_url):
        assert port_file.read_text().strip() == base_url
        counts = requests.get(base_url + "/_sandbox/counts", timeout=10).json()
        assert counts == {"customers": 12, "sessions": 30, "events": 30, "campaigns": 30,
                          "resource": 30}  # fmt: skip
        token = get_token(base_url)
        response = requests.get(
            base_url + "/v1/customers", headers={"Authorization": f"Bearer {token}"}, timeout=10
        )
        assert len(response.json()["data"]) == 12
        stop(process, signum)


def test_cli_credentials_and_ttl():
    arguments = ("--records", "3", "--client-id", "me", "--client-secret", "pw", "--token-ttl", "5")
    with sandbox_cli(*arguments) as (process, base_url):
        token = post(
            base_url + TOKEN_PATH, data={"grant_type": "client_credentials"}, auth=("me", "pw")
        )
        assert token.json()["expires_in"] == 5
        wrong = post(base_url + TOKEN_PATH, data={"grant_type": "client_credentials"}, auth=CLIENT)
        assert wrong.status_code == 401
        stop(process)


def test_cli_data_dir_keeps_updates_across_restarts(tmp_path):
    arguments = ("--records", "25", "--seed", "9", "--data-dir", str(tmp_path / "data"))
    with sandbox_cli(*arguments) as (process, base_url):
        updated = post(base_url + "/_sandbox/update", json={"resource": "sessions", "count": 4})
        assert updated.status_code == 200
        kept = requests.get(base_url + "/_sandbox/records/sessions", timeout=10).json()
        stop(process)
    assert kept["data"][-4:] == updated.json()["updated"]
    with sandbox_cli(*arguments) as (process, base_url):
        assert requests.get(base_url + "/_sandbox/records/sessions", timeout=10).json() == kept
        stop(process)
    other_seed = [*arguments[:3], "10", *arguments[4:]]
    refused = subprocess.run(
        [sys.executable, "-m", "tap_analytics.sandbox", *other_seed],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert refused.returncode == 2
    assert "made with seed 9 (not 10)" in refused.stderr
    assert "Traceback" not in refused.stderr


def test_cli_switches():
    override = {"resource": "events", "name": "source", "value": "cli"}
    arguments = ("--one-token-per-client", "--echo-credentials", "--field-override",
                 json.dumps(override))  # fmt: skip
    with sandbox_cli("--records", "5", *arguments) as (process, base_url):
        settings = requests.get(base_url + "/_sandbox/config", timeout=10).json()
        assert settings["one_token_per_client"] is True
        assert settings["echo_credentials"] is True
        [served_override] = settings["field_overrides"]
        assert {key: served_override[key] for key in override} == override
        older = get_token(base_url)
        get_token(base_url)
        refused = requests.get(
            base_url + "/v1/events", headers={"Authorization": f"Bearer {older}"}, timeout=10
        )
        assert refused.status_code == 401
        assert older in refused.json()["error"]["message"]
        stop(process)


def test_cli_stops_while_a_request_hangs():
    with sandbox_cli("--records", "5") as (process, base_url):
        assert post(base_url + "/_sandbox/faults", json={"kind": "hang"}).status_code == 200
        hanging = InBackground(lambda: requests.get(base_url + "/v1/customers", timeout=600))

        def arrived() -> bool:
            log = requests.get(base_url + "/_sandbox/requests", timeout=10).json()["requests"]
            return any(entry["path"] == "/v1/customers" for entry in log)

        wait_for(arrived, "the request to arrive")
        assert hanging.is_alive()
        stop(process)
    with pytest.raises(requests.ConnectionError):
        hanging.result()


def test_help_documents_every_control_endpoint_fault_and_setting():
    command = [sys.executable, "-m", "tap_analytics.sandbox", "--help"]
    text = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    assert len(text.splitlines()) <= 60, "one screen"
    for method, path in control.ROUTES:
        assert re.search(rf"^\s*{method}\s+{re.escape(path)}\s", text, re.MULTILINE), path
    assert control.RECORDS_PREFIX in text
    words = set(re.findall(r"[\w-]+", text))
    for name in [*faults.KINDS, *faults.FAULT_KEYS, *SandboxApp().settings(), *RESOURCES]:
        assert name in words, name
    for flag in ("--data-dir", "--one-token-per-client", "--echo-credentials", "--field-override"):
        assert flag in words, flag
