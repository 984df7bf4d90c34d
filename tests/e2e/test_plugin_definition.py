"""tap-analytics.yml (Hub-style definition) and meltano.yml agree with `tap-analytics --about`."""

from __future__ import annotations

import json
import subprocess
import typing as t

import pytest
import yaml
from e2ekit import ROOT, TAP

KINDS = {"integer": "integer", "number": "decimal", "boolean": "boolean", "object": "object"}


@pytest.fixture(scope="module")
def about() -> dict[str, t.Any]:
    out = subprocess.run(
        [str(TAP), "--about", "--format", "json"], capture_output=True, text=True, check=True
    )
    return dict(json.loads(out.stdout))


@pytest.fixture(scope="module")
def hub() -> dict[str, t.Any]:
    return dict(yaml.safe_load((ROOT / "tap-analytics.yml").read_text()))


@pytest.fixture(scope="module")
def project_extractor() -> dict[str, t.Any]:
    project = yaml.safe_load((ROOT / "meltano.yml").read_text())
    (extractor,) = [p for p in project["plugins"]["extractors"] if p["name"] == "tap-analytics"]
    return dict(extractor)


def types_of(schema: dict[str, t.Any]) -> set[str]:
    found = schema.get("type", [])
    types = {found} if isinstance(found, str) else set(found)
    for branch in schema.get("oneOf", []) + schema.get("anyOf", []):
        if isinstance(branch, dict):
            types |= types_of(branch)
    return types - {"null"}


def expected_kind(schema: dict[str, t.Any]) -> str:
    types = types_of(schema)
    if "array" in types:
        return "array"
    if len(types) == 1 and next(iter(types)) in KINDS:
        return KINDS[next(iter(types))]
    if schema.get("format") == "date-time":
        return "date_iso8601"
    return "options" if "enum" in schema else "string"


def about_settings(about: dict[str, t.Any], dotted: set[str]) -> dict[str, dict[str, t.Any]]:
    """--about's settings by Hub name: objects the Hub lists as `a.b` are expanded."""
    found: dict[str, dict[str, t.Any]] = {}
    for name, schema in about["settings"]["properties"].items():
        subs = {d.split(".", 1)[1] for d in dotted if d.startswith(f"{name}.")}
        if subs:
            found |= {f"{name}.{sub}": schema["properties"][sub] for sub in subs}
        else:
            found[name] = schema
    return found


def by_name(definition: dict[str, t.Any]) -> dict[str, dict[str, t.Any]]:
    return {s["name"]: s for s in definition["settings"]}


@pytest.mark.parametrize("source", ["hub", "project_extractor"])
def test_settings_match_about(
    source: str, about: dict[str, t.Any], request: pytest.FixtureRequest
) -> None:
    declared = by_name(request.getfixturevalue(source))
    expected = about_settings(about, {n for n in declared if "." in n})
    assert sorted(declared) == sorted(expected)
    for name, schema in expected.items():
        assert declared[name]["kind"] == expected_kind(schema), name
        assert bool(declared[name].get("sensitive")) == bool(schema.get("secret")), name


def test_hub_defaults_match_about(hub: dict[str, t.Any], about: dict[str, t.Any]) -> None:
    declared = by_name(hub)
    for name, schema in about_settings(about, {n for n in declared if "." in n}).items():
        assert declared[name].get("value") == schema.get("default"), name


@pytest.mark.parametrize("source", ["hub", "project_extractor"])
def test_capabilities_match_about(
    source: str, about: dict[str, t.Any], request: pytest.FixtureRequest
) -> None:
    declared = request.getfixturevalue(source)
    assert sorted(declared["capabilities"]) == sorted(about["capabilities"])
    assert "state" in declared["capabilities"]


@pytest.mark.parametrize("source", ["hub", "project_extractor"])
def test_required_settings_are_validated_as_a_group(
    source: str, about: dict[str, t.Any], request: pytest.FixtureRequest
) -> None:
    declared = request.getfixturevalue(source)
    groups = [set(group) for group in declared["settings_group_validation"]]
    properties = about["settings"]["properties"]
    to_sync = {name for name, s in properties.items() if "required to sync" in s["description"]}
    assert to_sync == {"client_id", "client_secret", "base_url"}
    assert to_sync in groups


def test_secret_is_sensitive_in_both(
    hub: dict[str, t.Any], project_extractor: dict[str, t.Any]
) -> None:
    assert by_name(hub)["client_secret"]["sensitive"] is True
    assert by_name(project_extractor)["client_secret"]["sensitive"] is True


def test_project_extractor_installs_this_checkout(project_extractor: dict[str, t.Any]) -> None:
    assert project_extractor["namespace"] == "tap_analytics"
    assert project_extractor["pip_url"] == "-e ${MELTANO_PROJECT_ROOT}"
    assert project_extractor["executable"] == "tap-analytics"
