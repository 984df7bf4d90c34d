"""Settings: names, defaults, the `client` block, env vars, and refusals before any request."""

from __future__ import annotations

import copy
import typing as t
from decimal import Decimal

import pytest
from singer_sdk.exceptions import ConfigValidationError

from tap_analytics.tap import TapAnalytics
from tapkit import CLIENT_SECRET, config_for, run_cli, run_tap

BAD_SETTINGS = [
    ({"client_id": None}, "client_id"),
    ({"client_secret": None}, "client_secret"),
    ({"base_url": None}, "base_url"),
    ({"base_url": "not a url"}, "base_url"),
    ({"page_size": 0}, "page_size"),
    ({"page_size": 101}, "page_size"),
    ({"page_size": "ten"}, "page_size"),
    ({"start_date": "yesterday"}, "start_date"),
    ({"start_date": "2024-13-45T00:00:00Z"}, "start_date"),
    ({"max_retries": -1}, "max_retries"),
    ({"request_timeout": 0}, "request_timeout"),
    ({"backoff_factor": "fast"}, "backoff_factor"),
    ({"request_timeout": 1e10}, "request_timeout"),
    ({"resources": 5}, "resources"),
    ({"resource_defaults": 5}, "resource_defaults"),
]


def without_nones(config: dict[str, t.Any]) -> dict[str, t.Any]:
    return {k: v for k, v in config.items() if v is not None}


@pytest.mark.parametrize(("change", "name"), BAD_SETTINGS)
def test_bad_setting_is_refused_by_name_before_any_request(sandbox, change, name):
    config = without_nones({**config_for(sandbox.base_url), **change})
    run = run_cli(config)
    assert run.returncode == 1
    assert f"'{name}'" in run.stderr.strip().splitlines()[-1]
    assert "Traceback" not in run.stderr
    assert run.messages == []
    assert sandbox.request_log() == [], "nothing may be requested with bad settings"
    assert CLIENT_SECRET not in run.stderr


def test_defaults_and_token_url():
    tap = TapAnalytics(config=config_for("https://api.test/"), validate_config=True)
    assert tap.config["page_size"] == 100
    assert tap.config["max_retries"] == 3
    assert tap.config["token_url"] == "https://api.test/oauth/v1/token"


def test_the_settings_passed_in_are_left_as_they_were():
    """The run reads a checked copy: nulls, the client block and defaults stay out of the dict."""
    passed = {
        **config_for("https://api.test/"),
        "scope": None,
        "client": {"auth": {"scope": "read"}},
        "request_timeout": Decimal("2.5"),
    }
    before = copy.deepcopy(passed)
    tap = TapAnalytics(config=passed, validate_config=True)
    assert passed == before
    assert type(passed["request_timeout"]) is Decimal
    assert tap.config["scope"] == "read"
    assert tap.config["page_size"] == 100
    assert tap.config["request_timeout"] == 2.5


def test_settings_from_environment(sandbox, monkeypatch):
    monkeypatch.setenv("TAP_ANALYTICS_CLIENT_ID", "sandbox-client")
    monkeypatch.setenv("TAP_ANALYTICS_CLIENT_SECRET", CLIENT_SECRET)
    monkeypatch.setenv("TAP_ANALYTICS_BASE_URL", sandbox.base_url)
    monkeypatch.setenv("TAP_ANALYTICS_PAGE_SIZE", "7")
    tap = TapAnalytics(config={}, parse_env_config=True, validate_config=True)
    assert tap.config["page_size"] == 7
    assert tap.config["base_url"] == sandbox.base_url


def test_client_block_is_an_alternative_to_flat_settings(sandbox):
    config = {
        "client": {
            "base_url": sandbox.base_url,
            "auth": {
                "type": "oauth2",
                "client_id": "sandbox-client",
                "client_secret": CLIENT_SECRET,
                "token_url": sandbox.base_url + "/oauth/v1/token",
            },
        },
        "backoff_factor": 0.01,
    }
    run = run_tap(config)
    assert len(run.records["customers"]) == sandbox.counts()["customers"]


def test_client_block_disagreeing_with_flat_setting_is_refused(sandbox):
    config = config_for(sandbox.base_url, client={"base_url": "http://elsewhere.test"})
    with pytest.raises(ConfigValidationError, match=r"'base_url' and 'client\.base_url' disagree"):
        TapAnalytics(config=config, validate_config=True)


def test_disagreeing_secrets_are_not_echoed(sandbox):
    config = config_for(sandbox.base_url, client={"auth": {"client_secret": "other-secret"}})
    with pytest.raises(ConfigValidationError) as caught:
        TapAnalytics(config=config, validate_config=True)
    assert "other-secret" not in str(caught.value.errors)
    assert CLIENT_SECRET not in str(caught.value.errors)


def test_batch_config_is_refused_by_name_before_any_request(sandbox):
    batch = {"encoding": {"format": "jsonl"}, "storage": {"root": "file:///tmp"}}
    run = run_cli({**config_for(sandbox.base_url), "batch_config": batch})
    assert run.returncode == 1
    assert "Traceback" not in run.stderr
    last = run.stderr.strip().splitlines()[-1]
    assert "Setting 'batch_config' is refused" in last
    assert "remove batch_config" in last
    assert run.messages == []
    assert sandbox.request_log() == []
