"""The programs under test, and the reference processes that bound start-up."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from harness.paths import BENCH, PYTHON, TAP_EXE
from harness.sandbox import CLIENT_ID, CLIENT_SECRET

if TYPE_CHECKING:
    from pathlib import Path


@dataclass(frozen=True)
class Contender:
    """A program that extracts every stream of the sandbox to stdout."""

    key: str
    label: str
    argv: tuple[str, ...]  # {config} stands for the config file's path
    settings: dict[str, object] = field(default_factory=dict)
    is_floor: bool = False
    extracts: bool = True  # False: a reference process that only starts (and reads nothing)

    def command(self, base_url: str, workdir: Path) -> list[str]:
        """Write this contender's config for base_url and return its command line."""
        config = workdir / f"{self.key}.config.json"
        settings = {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "base_url": base_url}
        config.write_text(json.dumps({**settings, **self.settings}))
        return [arg.replace("{config}", str(config)) for arg in self.argv]


FLOOR = (str(PYTHON), str(BENCH / "floor.py"), "--config", "{config}")
CONTENDERS = {
    c.key: c
    for c in (
        Contender("floor-seq", "floor, streams in turn", FLOOR, is_floor=True),
        Contender(
            "floor-threads", "floor, a thread per stream", (*FLOOR, "--threads"), is_floor=True
        ),
        Contender("tap", "tap-analytics, defaults", (str(TAP_EXE), "--config", "{config}")),
        Contender(
            "tap1",
            "tap-analytics, max_parallel_streams 1",
            (str(TAP_EXE), "--config", "{config}"),
            {"max_parallel_streams": 1},
        ),
        Contender(
            "stock",
            "stock SDK tap",
            (str(PYTHON), "-m", "benchmarks.stock_tap", "--config", "{config}"),
        ),
    )
}
REFERENCES = {
    c.key: c
    for c in (
        Contender("python", "`python -c pass`", (str(PYTHON), "-c", "pass"), extracts=False),
        # os._exit: interpreter teardown of singer_sdk's modules (~0.15 s) is not import time,
        # and the tap skips most of it (gc.freeze at exit).
        Contender(
            "import-sdk",
            "`python -c 'import singer_sdk'` (exit without teardown)",
            (str(PYTHON), "-c", "import os, singer_sdk; os._exit(0)"),
            extracts=False,
        ),
        Contender(
            "tap-about",
            "`tap-analytics --about`",
            (str(TAP_EXE), "--about", "--format", "json"),
            extracts=False,
        ),
    )
}
ALL = {**CONTENDERS, **REFERENCES}
