"""The three contenders and how each is started."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

from harness.paths import BENCH, PYTHON, TAP_EXE
from harness.sandbox import CLIENT_ID, CLIENT_SECRET

if TYPE_CHECKING:
    from pathlib import Path

MAX_PARALLEL_STREAMS = 4


@dataclass(frozen=True)
class Contender:
    """A program under test."""

    key: str
    label: str

    def command(self, base_url: str, workdir: Path) -> list[str]:
        """Return the command line that extracts everything from base_url."""
        if self.key == "floor":
            return [
                str(PYTHON),
                str(BENCH / "floor.py"),
                *("--base-url", base_url, "--client-id", CLIENT_ID),
                *("--client-secret", CLIENT_SECRET),
            ]
        config = workdir / f"{self.key}.config.json"
        config.write_text(json.dumps(self.config(base_url)))
        if self.key.startswith("tap"):
            return [str(TAP_EXE), "--config", str(config)]
        return [str(PYTHON), "-m", "benchmarks.stock_tap", "--config", str(config)]

    def config(self, base_url: str) -> dict[str, object]:
        """Return the tap config for this contender."""
        config: dict[str, object] = {
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "base_url": base_url,
        }
        if self.key.startswith("tap"):
            config["max_parallel_streams"] = 1 if self.key == "tap1" else MAX_PARALLEL_STREAMS
        return config


FLOOR = Contender("floor", "floor")
TAP = Contender("tap", "tap-analytics")
STOCK = Contender("stock", "stock SDK tap")
TAP_SEQUENTIAL = Contender("tap1", "tap-analytics, 1 stream at a time")
ALL = {c.key: c for c in (FLOOR, TAP, STOCK, TAP_SEQUENTIAL)}
