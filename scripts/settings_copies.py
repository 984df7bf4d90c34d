"""Write every copy of the tap's settings from `tap-analytics --about --format json`.

tap_analytics/settings.py is the one source. Its copies: tap-analytics.yml (the Hub-style
definition), the tap-analytics extractor of meltano.yml (between its `generated` marker lines)
and the settings table of README.md (between its `settings` markers). After changing a setting,
run `make settings-copies` (or this script). Usage: settings_copies.py [--check] [--root DIR];
with --check it writes nothing, names each stale copy and exits 1 if any is.
"""

from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from tap_analytics.settings import CONFIG_JSONSCHEMA, SYNC_SETTINGS

ROOT = Path(__file__).resolve().parent.parent
TAP = Path(sys.executable).parent / "tap-analytics"
EXPANDED = ("faker_config",)  # SDK objects the Hub lists as dotted settings
KINDS = {"integer": "integer", "number": "decimal", "boolean": "boolean", "array": "array"}
KINDS |= {"object": "object"}
# A sync needs the flat settings, or the rest_api `client` block that carries them.
GROUPS = [list(SYNC_SETTINGS), ["client"]]
NAME = "tap-analytics"
LABEL = "Analytics API"
DESCRIPTION = "Customers, sessions, events and campaigns from the Analytics API v1"
HUB_HEAD = (
    "# Hub-style plugin definition, generated from tap_analytics/settings.py by\n"
    "# scripts/settings_copies.py: edit settings.py, then run `make settings-copies`.\n"
    "# The package is not on PyPI: pip_url installs a checkout of this repository that sits\n"
    "# beside your Meltano project (docs/meltano.md).\n"
)
MELTANO_START = "# generated:start"
MELTANO_END = "# generated:end"
README_START = "<!-- settings:start -->"
README_END = "<!-- settings:end -->"
SDK_DOCS = "https://sdk.meltano.com/en/latest/stream_maps.html"


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


def holds_secret(schema: object) -> bool:
    """Whether a setting is secret or holds one (`client.auth.client_secret` in `client`)."""
    if not isinstance(schema, dict):
        return False
    return bool(schema.get("secret")) or any(map(holds_secret, schema.values()))


def dumped(document: object) -> str:
    """YAML text as Meltano writes meltano.yml (ruamel, block style, no line wrapping)."""
    writer = YAML()
    writer.default_flow_style = False
    writer.width = sys.maxsize
    text = io.StringIO()
    writer.dump(document, text)
    return text.getvalue()


def setting(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    """One Meltano setting from one property of the settings schema, keys in Meltano's order."""
    entry: dict[str, Any] = {"name": name, "kind": kind_of(schema)}
    if "default" in schema:
        entry["value"] = schema["default"]
    entry["label"] = schema.get("title") or name.replace("_", " ").capitalize()
    if schema.get("description"):
        entry["description"] = schema["description"]
    if holds_secret(schema):  # Meltano then redacts the whole value, nested secret included
        entry["sensitive"] = True
    if "enum" in schema:
        entry["options"] = [{"label": str(v), "value": v} for v in schema["enum"] if v is not None]
    return entry


def settings(properties: dict[str, Any]) -> list[dict[str, Any]]:
    """Meltano settings for every property, SDK objects in EXPANDED flattened to dotted names."""
    found = []
    for name, schema in properties.items():
        if name in EXPANDED:
            found += [setting(f"{name}.{sub}", s) for sub, s in schema["properties"].items()]
        else:
            found.append(setting(name, schema))
    return found


def extractor(info: dict[str, Any], **header: Any) -> dict[str, Any]:  # noqa: ANN401
    """A plugin definition: the header given, then what --about says."""
    return {
        **header,
        "capabilities": sorted(info["capabilities"]),
        "settings_group_validation": GROUPS,
        "settings": settings(info["settings"]["properties"]),
    }


def hub_text(info: dict[str, Any], _current: str) -> str:
    """The whole of tap-analytics.yml."""
    definition = extractor(
        info,
        name=NAME,
        namespace="tap_analytics",
        variant=NAME,
        label=LABEL,
        pip_url=f"../{NAME}",
        executable=NAME,
        description=DESCRIPTION,
        keywords=["meltano_sdk", "api", "analytics"],
        maintenance_status="active",
    )
    return HUB_HEAD + dumped(definition)


def meltano_text(info: dict[str, Any], current: str) -> str:
    """meltano.yml with the extractor's definition between the marker lines replaced."""
    definition = extractor(
        info,
        name=NAME,
        namespace="tap_analytics",
        label=LABEL,
        pip_url="-e ${MELTANO_PROJECT_ROOT}",
        executable=NAME,
        description=DESCRIPTION,
    )
    block = dumped([definition])  # as Meltano writes it back: `meltano select` changes nothing
    indented = "".join(f"  {line}\n" for line in block.splitlines())
    return between(current, MELTANO_START, MELTANO_END, indented, whole_lines=True)


def readme_text(info: dict[str, Any], current: str) -> str:
    """README.md with the settings table between the markers replaced."""
    return between(current, README_START, README_END, "\n" + table(info) + "\n")


def type_of(schema: dict[str, Any]) -> str:
    """A setting's JSON type, null left out, with its format when it has one."""
    found = schema.get("type", "string")
    types = [found] if isinstance(found, str) else [kind for kind in found if kind != "null"]
    shown = " or ".join(types)
    return f"{shown} ({schema['format']})" if "format" in schema else shown


def cell(text: str) -> str:
    """Text safe inside a Markdown table cell."""
    return text.replace("|", "\\|").replace("\n", " ")


def row(name: str, schema: dict[str, Any], *, required: bool) -> str:
    """One table row."""
    kind = type_of(schema) + (", required" if required else "")
    default = f"`{json.dumps(schema['default'])}`" if "default" in schema else ""
    description = cell(schema.get("description", ""))
    return f"| `{name}` | {kind} | {default} | {description} |"


def table(info: dict[str, Any]) -> str:
    """The README's settings table, and what the SDK adds."""
    schema = info["settings"]
    required = set(schema.get("required", []))
    own = [name for name in schema["properties"] if name in CONFIG_JSONSCHEMA["properties"]]
    builtin = [name for name in schema["properties"] if name not in own]
    lines = [
        "| setting | type | default | what it does |",
        "|---|---|---|---|",
        *(row(name, schema["properties"][name], required=name in required) for name in own),
        "",
        "The Singer SDK adds "
        + ", ".join(f"`{name}`" for name in builtin)
        + f" ([stream maps and flattening]({SDK_DOCS})).",
        "",
        "Capabilities: " + ", ".join(f"`{name}`" for name in info["capabilities"]) + ".",
        "Python versions: " + ", ".join(info["supported_python_versions"]) + ".",
    ]
    return "\n".join(lines)


def between(text: str, start: str, end: str, generated: str, *, whole_lines: bool = False) -> str:
    """Text with what lies between two markers replaced (after the start marker's line)."""
    first, last = text.find(start), text.find(end)
    if first < 0 or last < first:
        msg = f"no {start} ... {end} markers"
        raise SystemExit(msg)
    if whole_lines:
        first = text.index("\n", first)
        last = text.rindex("\n", 0, last)
        return text[: first + 1] + generated + text[last + 1 :]
    return text[: first + len(start)] + generated + text[last:]


COPIES = {"tap-analytics.yml": hub_text, "meltano.yml": meltano_text, "README.md": readme_text}


def main() -> int:
    """Write the copies, or with --check compare them."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only compare, exit 1 if stale")
    parser.add_argument("--root", type=Path, default=ROOT, help="where the copies are (tests)")
    arguments = parser.parse_args()
    check = arguments.check
    info = about()
    stale = []
    for name, render in COPIES.items():
        path = arguments.root / name
        current = path.read_text(encoding="utf-8") if path.exists() else ""
        wanted = render(info, current)
        if wanted == current:
            continue
        stale.append(name)
        if not check:
            path.write_text(wanted, encoding="utf-8")
    verb = "stale" if check else "rewritten"
    print(f"{verb}: {', '.join(stale)}" if stale else "every copy is up to date")
    return 1 if check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
