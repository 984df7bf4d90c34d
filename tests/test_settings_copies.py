"""tap-analytics.yml, meltano.yml's extractor and the README's table are copies of settings.py.

scripts/settings_copies.py writes them from `tap-analytics --about`; these tests check that the
committed copies are what it writes, and compare each setting of both plugin definitions with
the tap's own schema without its code.
"""

from __future__ import annotations

import json
import subprocess
import sys
import typing as t
from pathlib import Path

import pytest
import yaml

from tap_analytics.settings import SYNC_SETTINGS

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "settings_copies.py"
TAP = Path(sys.executable).with_name("tap-analytics")
COPIES = ("tap-analytics.yml", "meltano.yml", "README.md")
SCALAR_KINDS = {"integer": "integer", "number": "decimal", "boolean": "boolean"}


def run_script(*arguments: str) -> subprocess.CompletedProcess[str]:
    """Run scripts/settings_copies.py."""
    return subprocess.run(
        [sys.executable, str(SCRIPT), *arguments], capture_output=True, text=True, check=False
    )


@pytest.fixture(scope="module")
def about() -> dict[str, t.Any]:
    out = subprocess.run(
        [str(TAP), "--about", "--format", "json"], capture_output=True, text=True, check=True
    )
    return dict(json.loads(out.stdout))


def hub() -> dict[str, t.Any]:
    return dict(yaml.safe_load((ROOT / "tap-analytics.yml").read_text()))


def project_extractor() -> dict[str, t.Any]:
    project = yaml.safe_load((ROOT / "meltano.yml").read_text())
    (extractor,) = [p for p in project["plugins"]["extractors"] if p["name"] == "tap-analytics"]
    return dict(extractor)


DEFINITIONS = {"tap-analytics.yml": hub, "meltano.yml": project_extractor}


def test_the_committed_copies_are_what_the_script_writes() -> None:
    result = run_script("--check")
    assert result.returncode == 0, (
        f"{result.stdout}{result.stderr}: run `make settings-copies` and commit the copies"
    )


def test_the_check_names_each_stale_copy_and_the_script_rewrites_them(tmp_path: Path) -> None:
    for name in COPIES:
        committed = (ROOT / name).read_text()
        stale = committed.replace("Records per request", "Rows per request")
        assert stale != committed, name
        (tmp_path / name).write_text(stale)
    check = run_script("--check", "--root", str(tmp_path))
    assert (check.returncode, check.stdout.strip()) == (1, f"stale: {', '.join(COPIES)}")
    assert run_script("--root", str(tmp_path)).returncode == 0
    for name in COPIES:
        assert (tmp_path / name).read_text() == (ROOT / name).read_text(), name


def types_of(schema: dict[str, t.Any]) -> set[str]:
    found = schema.get("type", [])
    types = {found} if isinstance(found, str) else set(found)
    for branch in schema.get("oneOf", []) + schema.get("anyOf", []):
        types |= types_of(branch)
    return types - {"null"}


def expected_kind(schema: dict[str, t.Any]) -> str:
    types = types_of(schema)
    if types & {"array", "object"}:
        return "array" if "array" in types else "object"
    if len(types) == 1 and next(iter(types)) in SCALAR_KINDS:
        return SCALAR_KINDS[next(iter(types))]
    if schema.get("format") == "date-time":
        return "date_iso8601"
    return "options" if "enum" in schema else "string"


def secret_inside(schema: t.Any) -> bool:
    if isinstance(schema, list):
        return any(secret_inside(item) for item in schema)
    if not isinstance(schema, dict):
        return False
    return schema.get("secret") is True or any(secret_inside(v) for v in schema.values())


def tap_settings(about: dict[str, t.Any], dotted: set[str]) -> dict[str, dict[str, t.Any]]:
    """--about's settings by plugin name: objects listed as `a.b` are expanded."""
    found: dict[str, dict[str, t.Any]] = {}
    for name, schema in about["settings"]["properties"].items():
        subs = {d.split(".", 1)[1] for d in dotted if d.startswith(f"{name}.")}
        if subs:
            found |= {f"{name}.{sub}": schema["properties"][sub] for sub in subs}
        else:
            found[name] = schema
    return found


@pytest.mark.parametrize("source", DEFINITIONS)
def test_each_setting_matches_the_taps_schema(source: str, about: dict[str, t.Any]) -> None:
    declared = {s["name"]: s for s in DEFINITIONS[source]()["settings"]}
    expected = tap_settings(about, {n for n in declared if "." in n})
    assert sorted(declared) == sorted(expected)
    for name, schema in expected.items():
        setting = declared[name]
        assert setting["kind"] == expected_kind(schema), name
        assert setting["label"] == schema["title"], name
        assert setting.get("description") == schema.get("description"), name
        assert setting.get("value") == schema.get("default"), name
        assert setting.get("sensitive", False) is secret_inside(schema), name
        options = [o["value"] for o in setting.get("options", [])]
        assert options == [v for v in schema.get("enum", []) if v is not None], name


@pytest.mark.parametrize("source", DEFINITIONS)
def test_what_is_secret_or_holds_a_secret_is_sensitive(source: str) -> None:
    declared = {s["name"]: s for s in DEFINITIONS[source]()["settings"]}
    assert {name for name, s in declared.items() if s.get("sensitive")} == {
        "client_secret",
        "client",  # client.auth.client_secret: Meltano redacts the whole block
    }


@pytest.mark.parametrize("source", DEFINITIONS)
def test_capabilities_match_about(source: str, about: dict[str, t.Any]) -> None:
    declared = DEFINITIONS[source]()
    assert sorted(declared["capabilities"]) == sorted(about["capabilities"])
    assert "state" in declared["capabilities"]


@pytest.mark.parametrize("source", DEFINITIONS)
def test_a_sync_needs_the_flat_settings_or_the_client_block(source: str) -> None:
    groups = DEFINITIONS[source]()["settings_group_validation"]
    assert [set(group) for group in groups] == [set(SYNC_SETTINGS), {"client"}]
    assert set(SYNC_SETTINGS) == {"client_id", "client_secret", "base_url"}


def test_the_project_extractor_installs_this_checkout_and_the_hub_one_a_checkout_beside() -> None:
    extractor = project_extractor()
    assert extractor["namespace"] == "tap_analytics"
    assert extractor["pip_url"] == "-e ${MELTANO_PROJECT_ROOT}"
    assert extractor["executable"] == "tap-analytics"
    assert hub()["pip_url"] == "../tap-analytics"
