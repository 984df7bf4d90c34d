"""Write the README's settings table from `tap-analytics --about --format json`.

Usage: settings_table.py [--check] [FILE]. The table goes between the markers
`<!-- settings:start -->` and `<!-- settings:end -->` of FILE (default README.md). With
--check it writes nothing and exits 1 when the file differs from what `--about` says.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from tap_analytics.settings import CONFIG_JSONSCHEMA

ROOT = Path(__file__).resolve().parent.parent
TAP = Path(sys.executable).parent / "tap-analytics"
START = "<!-- settings:start -->"
END = "<!-- settings:end -->"
SDK_DOCS = "https://sdk.meltano.com/en/latest/stream_maps.html"


def about() -> dict[str, Any]:
    """The tap's own description of itself."""
    out = subprocess.run(
        [str(TAP), "--about", "--format", "json"], capture_output=True, text=True, check=True
    ).stdout
    return dict(json.loads(out))


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
    """The Markdown that goes between the markers."""
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


def replaced(text: str, generated: str) -> str:
    """The file's text with the generated table between the markers."""
    start, end = text.find(START), text.find(END)
    if start < 0 or end < start:
        msg = f"no {START} ... {END} markers"
        raise SystemExit(msg)
    return text[: start + len(START)] + "\n" + generated + "\n" + text[end:]


def main() -> int:
    """Write or check the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only compare, exit 1 if stale")
    parser.add_argument("file", nargs="?", type=Path, default=ROOT / "README.md")
    arguments = parser.parse_args()
    current = arguments.file.read_text(encoding="utf-8")
    wanted = replaced(current, table(about()))
    if arguments.check:
        stale = current != wanted
        print(f"{arguments.file.name}: settings table is {'stale' if stale else 'up to date'}")
        return 1 if stale else 0
    arguments.file.write_text(wanted, encoding="utf-8")
    print(f"wrote the settings table of {arguments.file.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
