"""Redaction: a server quoting the secret or a token back does not make the tap print it."""

from __future__ import annotations

import io
import json
import logging
from urllib.parse import quote

import pytest
from singer_sdk.logging import StructuredFormatter

from tap_analytics import redact
from tapkit import CLIENT_SECRET, config_for, run_cli, run_tap

DEBUG = {"TAP_ANALYTICS_LOG_LEVEL": "DEBUG", "LOGLEVEL": "DEBUG"}


def tokens_seen(sandbox) -> set[str]:
    return {r["token"] for r in sandbox.request_log() if r.get("token")}


def test_a_token_endpoint_quoting_the_form_does_not_print_the_secret(sandbox_factory):
    sandbox = sandbox_factory(echo_credentials=True)
    run = run_cli(config_for(sandbox.base_url, client_id="intruder"), env=DEBUG)
    assert run.returncode == 1
    assert "DEBUG" in run.stderr
    last = run.stderr.strip().splitlines()[-1]
    assert "client_secret=***" in last  # the server did quote it
    assert CLIENT_SECRET not in run.stderr + json.dumps(run.messages)


FAULTS = [
    {"kind": "status", "status": 401, "path": "/v1/customers", "times": 2},
    {"kind": "status", "status": 429, "path": "/v1/sessions", "retry_after": 0, "times": 2},
    {"kind": "status", "status": 503, "path": "/v1/campaigns", "times": 2},
    {"kind": "status", "status": 403, "path": "/v1/events", "times": -1},
]


def test_a_data_endpoint_quoting_the_authorization_header_does_not_print_the_token(
    sandbox_factory,
):
    sandbox = sandbox_factory(echo_credentials=True)
    for fault in FAULTS:
        sandbox.add_fault(fault)
    run = run_cli(config_for(sandbox.base_url, page_size=50), env=DEBUG)
    assert run.returncode == 1
    assert "DEBUG" in run.stderr
    assert run.stderr.count("received Authorization: Bearer ***") >= len(FAULTS)
    output = run.stderr + json.dumps(run.messages)
    tokens = tokens_seen(sandbox)
    assert tokens
    for token in tokens:
        assert token not in output
    assert CLIENT_SECRET not in output


def test_exception_text_holds_no_token(sandbox_factory):
    sandbox = sandbox_factory(echo_credentials=True)
    sandbox.add_fault({"kind": "status", "status": 403, "path": "/v1/events", "times": -1})
    run = run_tap(config_for(sandbox.base_url), expect_failure=True)
    assert "Bearer ***" in str(run.error)
    for token in tokens_seen(sandbox):
        assert token not in str(run.error)


def fail_quoting(secret: str) -> None:
    msg = f"server said: client_secret={quote(secret, safe='')} and {secret}"
    raise ValueError(msg)


@pytest.mark.parametrize("formatter", [logging.Formatter(), StructuredFormatter()])
def test_a_logged_traceback_holds_no_secret(formatter):
    secret = "s3cr3t/with+chars"
    redact.hide(secret)
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(formatter)
    logger = logging.getLogger("tap-analytics.test-redaction")
    logger.addHandler(handler)
    redact.install()
    try:
        try:
            fail_quoting(secret)
        except ValueError:
            logger.exception("failed with %s", secret)
    finally:
        logger.removeHandler(handler)
    text = out.getvalue()
    assert "s3cr3t" not in text
    assert "***" in text
    assert "ValueError" in text
