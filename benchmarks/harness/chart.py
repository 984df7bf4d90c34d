"""Draw the results as a PNG chart; run in the chart venv: python -m harness.chart JSON PNG."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import matplotlib as mpl

mpl.use("Agg")

import matplotlib.pyplot as plt

from harness.contenders import ALL
from harness.report import growth, ratio, rss, wall

if TYPE_CHECKING:
    from matplotlib.axes import Axes

COLOURS = {"floor": "#7f7f7f", "tap": "#1f77b4", "stock": "#ff7f0e", "tap1": "#aec7e8"}


def timing_panel(ax: Axes, workload: dict[str, Any]) -> None:
    """Bar the median wall times, labelled with their ratio to the floor (or critical path)."""
    keys = list(workload["contenders"])
    seconds = [wall(workload, key) or 0.0 for key in keys]
    bars = ax.bar([ALL[k].label for k in keys], seconds, color=[COLOURS[k] for k in keys])
    base = workload.get("critical_path_s") or wall(workload, "floor")
    unit = "x critical path" if workload.get("critical_path_s") else "x floor"
    labels = [f"{r:.2f} {unit}" if (r := ratio(s or None, base)) else "failed" for s in seconds]
    ax.bar_label(bars, labels=labels, fontsize=8)
    if critical := workload.get("critical_path_s"):
        ax.axhline(critical, linestyle="--", color="black", linewidth=1)
        right = len(keys) - 0.5
        ax.annotate("critical path", (right, critical), ha="right", va="bottom", fontsize=8)
    ax.set_title(f"{workload['title']} ({workload['total_records']:,} records)", fontsize=10)
    ax.set_ylabel("wall time, median (s)")


def memory_panel(ax: Axes, small: dict[str, Any], large: dict[str, Any]) -> None:
    """Bar the peak RSS at both sizes, labelled with the growth."""
    keys = list(large["contenders"])
    width = 0.38
    sizes = ((-width / 2, small, "#9ecae1"), (width / 2, large, "#3182bd"))
    for offset, workload, colour in sizes:
        values = [rss(workload, key) or 0.0 for key in keys]
        positions = [i + offset for i in range(len(keys))]
        ax.bar(positions, values, width, color=colour, label=f"{workload['per_stream']:,}/stream")
    for i, key in enumerate(keys):
        change = growth(rss(small, key), rss(large, key))
        text = "failed" if change is None else f"{change:+.0f} %"
        ax.annotate(text, (i, rss(large, key) or 0.0), ha="center", xytext=(0, 3),
                    textcoords="offset points", fontsize=8)  # fmt: skip
    ax.set_xticks(range(len(keys)), [ALL[k].label for k in keys])
    ax.set_title("Peak RSS", fontsize=10)
    ax.set_ylabel("MB")
    ax.legend(fontsize=8)


def draw(results: dict[str, Any], path: Path) -> None:
    """Draw every measured workload side by side and save the PNG."""
    workloads = results["workloads"]
    panels: list[Any] = [workloads[k] for k in ("cpu", "latency") if k in workloads]
    memory = "memory_small" in workloads and "memory_large" in workloads
    count = len(panels) + memory
    if not count:
        return
    fig, axes = plt.subplots(1, count, figsize=(5 * count, 4.5), squeeze=False)
    for ax, workload in zip(axes[0], panels, strict=False):
        timing_panel(ax, workload)
    if memory:
        memory_panel(axes[0][-1], workloads["memory_small"], workloads["memory_large"])
    fig.suptitle(f"tap-analytics benchmark · {results['meta']['date']}", fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    """Draw the PNG named by the second argument from the JSON named by the first."""
    results_json, png = (Path(arg) for arg in sys.argv[1:3])
    draw(json.loads(results_json.read_text()), png)


if __name__ == "__main__":
    main()
