"""Discovery: offline, no credentials, contract schemas with exact names and nullability."""

from __future__ import annotations

import json
import subprocess
import typing as t

import pytest

from tapkit import TAP, config_for, run_cli

STREAMS = {"customers", "sessions", "events", "campaigns"}
SYNC_SETTINGS = ("client_id", "client_secret", "base_url")  # needed to sync, not to discover


def discover() -> dict[str, t.Any]:
    """Run --discover with no config at all."""
    result = subprocess.run([TAP, "--discover"], capture_output=True, check=True, timeout=60)
    catalog: dict[str, t.Any] = json.loads(result.stdout)
    return catalog


def test_discover_needs_no_network_and_no_credentials():
    catalog = discover()
    assert {s["tap_stream_id"] for s in catalog["streams"]} == STREAMS
    for stream in catalog["streams"]:
        assert stream["key_properties"] == ["id"]
        assert stream["replication_key"] == "updated_at"
        assert stream["replication_method"] == "INCREMENTAL"
        assert "$ref" not in json.dumps(stream["schema"]), "fragments must be inlined"


def test_schemas_follow_the_contract():
    schemas = {s["tap_stream_id"]: s["schema"]["properties"] for s in discover()["streams"]}
    customers, sessions = schemas["customers"], schemas["sessions"]
    assert customers["email"]["type"] == ["string", "null"]
    assert customers["total_events"]["type"] == "integer"
    assert customers["tags"] == {"type": "array", "items": {"type": "string"}}
    assert customers["created_at"]["format"] == "date-time"
    assert customers["attributes"]["type"] == "object"
    assert "user_id" not in json.dumps(schemas)
    assert set(sessions["utm"]["properties"]) == {"source", "medium", "campaign", "term", "content"}
    assert sessions["utm"]["description"]
    assert sessions["ended_at"]["type"] == ["string", "null"]
    assert schemas["events"]["properties"]["type"] == "object"
    assert schemas["campaigns"]["starts_on"] == {"type": "string", "format": "date"}
    assert schemas["campaigns"]["ends_on"]["type"] == ["string", "null"]


def test_schemas_name_exactly_the_fields_the_api_serves(sandbox):
    # The sandbox is written against the API contract independently of the tap's schemas.
    schemas = {s["tap_stream_id"]: s["schema"]["properties"] for s in discover()["streams"]}
    for stream in STREAMS:
        served = set().union(*(record.keys() for record in sandbox.records(stream)))
        assert set(schemas[stream]) == served, stream


def test_discover_with_bad_credentials_still_works(tmp_path):
    config = tmp_path / "config.json"
    config.write_text(
        json.dumps({"client_id": "x", "client_secret": "y", "base_url": "http://127.0.0.1:9"})
    )
    result = subprocess.run(
        [TAP, "--config", str(config), "--discover"], capture_output=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert len(json.loads(result.stdout)["streams"]) == len(STREAMS)


def problem_lines(stderr: str) -> list[str]:
    """The lines of stderr logged at WARNING or above."""
    return [line for line in stderr.splitlines() if "| WARNING" in line or "| ERROR" in line]


@pytest.mark.parametrize("config", [None, {}], ids=["no config", "empty config"])
def test_discover_warns_about_no_setting(tmp_path, config):
    argv = [TAP, "--discover"]
    if config is not None:
        (tmp_path / "config.json").write_text(json.dumps(config))
        argv += ["--config", str(tmp_path / "config.json")]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert problem_lines(result.stderr) == []
    assert {s["tap_stream_id"] for s in json.loads(result.stdout)["streams"]} == STREAMS


def test_about_says_the_credentials_are_required_to_sync():
    about = subprocess.run(
        [TAP, "--about", "--format", "json"], capture_output=True, check=True, timeout=60
    )
    settings = json.loads(about.stdout)["settings"]
    assert not set(SYNC_SETTINGS) & set(settings.get("required", []))
    for name in SYNC_SETTINGS:
        assert "required to sync" in settings["properties"][name]["description"]


@pytest.mark.parametrize("name", SYNC_SETTINGS)
def test_sync_without_a_required_setting_fails_in_one_line_before_any_request(sandbox, name):
    config = config_for(sandbox.base_url)
    del config[name]
    run = run_cli(config)
    assert run.returncode == 1
    problems = problem_lines(run.stderr)
    assert len(problems) == 1, run.stderr
    assert f"Setting '{name}' is required to sync" in problems[0]
    assert [other for other in SYNC_SETTINGS if f"'{other}'" in problems[0]] == [name]
    assert run.messages == []
    assert sandbox.request_log() == [], "nothing may be requested without the credentials"
