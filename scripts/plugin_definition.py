"""Write tap-analytics.yml, the Hub-style plugin definition, from `tap-analytics --about`.

Usage: plugin_definition.py [--check]. With --check it writes nothing and exits 1 when the
file differs from what `--about` says (tests/e2e/test_plugin_definition.py checks the same).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
TARGET = ROOT / "tap-analytics.yml"
TAP = Path(sys.executable).parent / "tap-analytics"
EXPANDED = ("faker_config",)  # SDK objects the Hub lists as dotted settings
KINDS = {"integer": "integer", "number": "decimal", "boolean": "boolean", "array": "array"}
KINDS |= {"object": "object"}
HEADER = {
    "name": "tap-analytics",
    "namespace": "tap_analytics",
    "variant": "tap-analytics",
    "label": "Analytics API",
    "description": "Customers, sessions, events and campaigns from the Analytics API v1",
    "pip_url": "../tap-analytics",
    "executable": "tap-analytics",
    "keywords": ["meltano_sdk", "api", "analytics"],
    "maintenance_status": "active",
}


def about() -> dict[str, Any]:
    """The tap's own description of itself."""
    out = subprocess.run(
        [str(TAP), "--about", "--format", "json"], capture_output=True, text=True, check=True
    ).stdout
    return dict(json.loads(out))


def types_of(schema: dict[str, Any]) -> list[str]:
    """The JSON types a setting's schema allows (null left out), branches included."""
    found = schema.get("type", [])
    types = [found] if isinstance(found, str) else list(found)
    for branch in schema.get("oneOf", []) + schema.get("anyOf", []):
        if isinstance(branch, dict):
            types += types_of(branch)
    return [kind for kind in dict.fromkeys(types) if kind != "null"]


def kind_of(schema: dict[str, Any]) -> str:
    """The Meltano setting kind for a JSON schema."""
    types = types_of(schema)
    if "array" in types:
        return "array"
    if len(types) == 1 and types[0] in KINDS:
        return KINDS[types[0]]
    if schema.get("format") == "date-time":
        return "date_iso8601"
    if "enum" in schema:
        return "options"
    return "string"


def setting(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    """One Hub setting from one property of the settings schema."""
    entry: dict[str, Any] = {"name": name, "kind": kind_of(schema)}
    entry["label"] = schema.get("title") or name.replace("_", " ").capitalize()
    if schema.get("description"):
        entry["description"] = schema["description"]
    if "default" in schema:
        entry["value"] = schema["default"]
    if schema.get("secret"):
        entry["sensitive"] = True
    if "enum" in schema:
        entry["options"] = [{"label": str(v), "value": v} for v in schema["enum"] if v is not None]
    return entry


def settings(properties: dict[str, Any]) -> list[dict[str, Any]]:
    """Hub settings for every property, SDK objects in EXPANDED flattened to dotted names."""
    found = []
    for name, schema in properties.items():
        if name in EXPANDED:
            found += [setting(f"{name}.{sub}", s) for sub, s in schema["properties"].items()]
        else:
            found.append(setting(name, schema))
    return found


def definition(info: dict[str, Any]) -> dict[str, Any]:
    """The whole Hub-style definition."""
    schema = info["settings"]
    return {
        **HEADER,
        "capabilities": sorted(info["capabilities"]),
        # Discovery needs no setting; a sync needs those whose description says so.
        "settings_group_validation": [
            [
                name
                for name, spec in schema["properties"].items()
                if "required to sync" in spec.get("description", "")
            ]
        ],
        "settings": settings(schema["properties"]),
    }


def render(info: dict[str, Any]) -> str:
    """The YAML text of tap-analytics.yml."""
    head = (
        "# Hub-style plugin definition; regenerate: .venv/bin/python scripts/plugin_definition.py\n"
        "# The package is not on PyPI: pip_url installs a checkout of this repository that sits\n"
        "# beside your Meltano project (docs/meltano.md).\n"
    )
    return head + yaml.safe_dump(definition(info), sort_keys=False, width=100)


def main() -> int:
    """Write or check tap-analytics.yml."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only compare, exit 1 if stale")
    text = render(about())
    if parser.parse_args().check:
        current = TARGET.read_text() if TARGET.exists() else ""
        print(
            "tap-analytics.yml is up to date" if current == text else "tap-analytics.yml is stale"
        )
        return 0 if current == text else 1
    TARGET.write_text(text)
    print(f"wrote {TARGET.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
