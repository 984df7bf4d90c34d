"""Paths shared by the harness."""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BENCH = REPO / "benchmarks"
WORK = BENCH / ".work"
RESULTS = BENCH / "results"
DOCS = REPO / "docs" / "performance.md"
VENV_BIN = REPO / ".venv" / "bin"
PYTHON = Path(sys.executable)
SANDBOX_EXE = VENV_BIN / "tap-analytics-sandbox"
TAP_EXE = VENV_BIN / "tap-analytics"
