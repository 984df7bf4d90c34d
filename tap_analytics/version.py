"""Installed versions, read from one METADATA header instead of the whole file."""

from __future__ import annotations

from importlib import metadata

UNKNOWN_VERSION = "[could not be detected]"  # as the SDK says it


def package_version(name: str) -> str:
    """An installed distribution's version, read from its METADATA headers."""
    # importlib.metadata's `version` parses the whole METADATA (the README too) with the email
    # package, which it imports first: twice a run, a tenth of start-up, for one header.
    try:
        text = metadata.distribution(name).read_text("METADATA") or ""
    except metadata.PackageNotFoundError:
        return UNKNOWN_VERSION
    for line in text.partition("\n\n")[0].splitlines():
        if line.startswith("Version:"):
            return line.removeprefix("Version:").strip()
    return UNKNOWN_VERSION
