"""Draw the chart in its own virtual environment, so matplotlib (and numpy) stay out of .venv.

joblib, which singer-sdk imports, imports numpy whenever it is installed; numpy in the project
environment would add ~0.3 s to every SDK tap's start-up, which a Meltano plugin venv never pays.
"""

from __future__ import annotations

import subprocess
import sys
from typing import TYPE_CHECKING

from harness.paths import BENCH, WORK

if TYPE_CHECKING:
    from pathlib import Path

CHART_VENV = WORK / "chart-venv"
CHART_PYTHON = CHART_VENV / "bin" / "python"
REQUIREMENT = "matplotlib>=3.8"


def has_matplotlib() -> bool:
    """Return whether the chart environment can import matplotlib."""
    if not CHART_PYTHON.exists():
        return False
    probe = [str(CHART_PYTHON), "-c", "import matplotlib"]
    return subprocess.run(probe, capture_output=True, check=False).returncode == 0


def ensure_chart_env() -> None:
    """Create benchmarks/.work/chart-venv with matplotlib unless it is there."""
    if has_matplotlib():
        return
    print(f"creating {CHART_VENV} with {REQUIREMENT} (once)", flush=True)
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(CHART_VENV)], check=True)
    install = [str(CHART_PYTHON), "-m", "pip", "install", "--quiet", REQUIREMENT]
    done = subprocess.run(install, capture_output=True, text=True, check=False)
    if done.returncode:
        print(done.stdout[-2000:], done.stderr[-2000:], file=sys.stderr)
        raise subprocess.CalledProcessError(done.returncode, install)


def draw_png(results_json: Path, png: Path) -> None:
    """Draw png from results_json with the chart environment; warn, never fail."""
    try:
        ensure_chart_env()
        cmd = [str(CHART_PYTHON), "-m", "harness.chart", str(results_json), str(png)]
        subprocess.run(cmd, cwd=BENCH, check=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        print(f"no chart: {exc}", file=sys.stderr)
