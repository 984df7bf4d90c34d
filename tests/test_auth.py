"""OAuth2 client credentials: one token per run, renewal, revocation, refusals."""

from __future__ import annotations

import typing as t

import pytest

from tap_analytics.auth import ClientCredentialsAuth
from tap_analytics.errors import TokenRequestError
from tap_analytics.retry import RetryPolicy
from tapkit import CLIENT_SECRET, config_for, run_cli, run_tap

TOKEN_PATH = "/oauth/v1/token"


def token_requests(sandbox) -> list[dict[str, t.Any]]:
    return [r for r in sandbox.request_log() if r["path"] == TOKEN_PATH]


def data_requests(sandbox) -> list[dict[str, t.Any]]:
    return [r for r in sandbox.request_log() if r["path"].startswith("/v1/")]


def test_one_token_for_every_stream_of_a_run(sandbox):
    run = run_tap(config_for(sandbox.base_url, page_size=20))
    assert set(run.records) == {"customers", "sessions", "events", "campaigns"}
    assert len(token_requests(sandbox)) == 1
    tokens = {r["token"] for r in data_requests(sandbox)}
    assert len(tokens) == 1
    assert all(r["auth"] == "bearer" for r in data_requests(sandbox))


def test_token_request_is_a_form_body(sandbox):
    run_tap(config_for(sandbox.base_url, scope="read:all"))
    (request,) = token_requests(sandbox)
    assert request["method"] == "POST"
    assert request["auth"] == "body"


def test_token_is_renewed_before_it_expires(sandbox_factory):
    sandbox = sandbox_factory(token_ttl=1, latency_ms=30)
    run = run_tap(config_for(sandbox.base_url, page_size=10, max_parallel_streams=1))
    assert sum(len(v) for v in run.records.values()) == sum(
        n for k, n in sandbox.counts().items() if k != "resource"
    )
    assert len(token_requests(sandbox)) > 1
    rejected = [r for r in data_requests(sandbox) if r["status"] == 401]
    assert len(rejected) <= 1, "renewal must happen before expiry, not after rejections"


@pytest.mark.parametrize("revocations", [1, 2])
def test_revoked_token_is_replaced_and_the_request_repeated(sandbox, revocations):
    for skip in range(revocations):
        sandbox.add_fault({"kind": "revoke", "path": "/v1/events", "skip": 2 + 3 * skip})
    run = run_tap(config_for(sandbox.base_url, page_size=20))
    assert run.ids("events") == [r["id"] for r in sandbox.records("events")]
    assert len(token_requests(sandbox)) == 1 + revocations


def test_bad_credentials_fail_clearly_without_the_secret(sandbox):
    config = config_for(sandbox.base_url, client_secret="wrong-secret-value")
    run = run_cli(config)
    assert run.returncode == 1
    last = run.stderr.strip().splitlines()[-1]
    assert sandbox.base_url + TOKEN_PATH in last
    assert "401" in last
    assert "invalid_client" in last
    assert "wrong-secret-value" not in run.stderr
    assert len(token_requests(sandbox)) == 1, "refused credentials are not retried"


@pytest.mark.parametrize("status", [429, 500, 502, 503])
def test_token_endpoint_transient_errors_are_retried(sandbox, status):
    sandbox.add_fault({"kind": "status", "status": status, "path": TOKEN_PATH, "times": 2})
    run = run_tap(config_for(sandbox.base_url))
    assert len(run.records["customers"]) == sandbox.counts()["customers"]
    assert len(token_requests(sandbox)) == 3


def test_token_endpoint_giving_up_names_the_url(sandbox):
    sandbox.add_fault({"kind": "status", "status": 503, "path": TOKEN_PATH, "times": -1})
    run = run_tap(config_for(sandbox.base_url, max_retries=2), expect_failure=True)
    assert "oauth/v1/token" in str(run.error)
    assert len(token_requests(sandbox)) == 3


def test_token_refusal_error_type(sandbox):
    auth = ClientCredentialsAuth(
        token_url=sandbox.base_url + TOKEN_PATH,
        client_id="nobody",
        client_secret=CLIENT_SECRET,
        scope=None,
        timeout=5,
        retry=RetryPolicy(backoff_factor=0.01),
    )
    with pytest.raises(TokenRequestError, match="invalid_client") as caught:
        auth.access_token()
    assert CLIENT_SECRET not in str(caught.value)
    assert CLIENT_SECRET not in repr(auth)


def test_expired_token_is_replaced_and_the_request_repeated(sandbox_factory, monkeypatch):
    # Make the tap keep tokens past their expiry, as a client with a skewed clock would.
    monkeypatch.setattr("tap_analytics.auth.REFRESH_MARGIN", -3600.0)
    sandbox = sandbox_factory(token_ttl=1, latency_ms=25)
    run = run_tap(config_for(sandbox.base_url, page_size=10, max_parallel_streams=1))
    for stream in ("customers", "sessions", "events", "campaigns"):
        assert run.ids(stream) == [r["id"] for r in sandbox.records(stream)]
    expired = [r for r in data_requests(sandbox) if r["status"] == 401]
    assert expired, "the sandbox rejected an expired token"
    assert len(token_requests(sandbox)) == 1 + len(expired)
