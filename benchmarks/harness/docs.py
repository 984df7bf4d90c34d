"""docs/performance.md, generated from the committed results."""

from __future__ import annotations

from typing import Any

from harness.report import body, header, loader_section


def render_docs(results: dict[str, Any], loader: dict[str, Any] | None) -> str:
    """Return docs/performance.md."""
    lines = ["# Performance", "", *header(results["meta"]), *body(results)]
    if loader:
        lines += ["", *loader_section(loader)]
    return "\n".join(lines) + "\n"
