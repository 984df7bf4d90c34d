"""Numbers derived from the measured medians: the floor, ratios, slopes, targets."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

FLOORS = ("floor-seq", "floor-threads")
PAGE_SIZE = 100
NOISE = 0.05  # "never slower than max_parallel_streams 1, beyond noise": 5 % allowance
RSS_FLAT_PCT = 10.0  # "flat": peak RSS grows by at most this much from small to large

Workloads = dict[str, Any]


def entry(workload: dict[str, Any] | None, key: str) -> dict[str, Any] | None:
    """Return a contender's summary in a workload if it ran and passed."""
    found = (workload or {}).get("contenders", {}).get(key)
    return found if found and found["ok"] else None


def value(workload: dict[str, Any] | None, key: str, metric: str) -> float | None:
    """Return a contender's median of a metric, or None if it did not run or failed."""
    found = entry(workload, key)
    return None if found is None else float(found[metric])


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    """Return numerator / denominator, or None when either is missing."""
    return numerator / denominator if numerator is not None and denominator else None


@dataclass(frozen=True)
class Best:
    """The better floor form for one measure: its value and which form it was."""

    value: float | None
    form: str


def floor(workload: dict[str, Any] | None, metric: str) -> Best:
    """Return the better (lower) of the two floor forms for a metric."""
    found = [(v, key) for key in FLOORS if (v := value(workload, key, metric)) is not None]
    if not found:
        return Best(None, "")
    best, form = min(found)
    return Best(best, form)


def slope_us(workloads: Workloads, key: str, metric: str) -> float | None:
    """Return the marginal cost of a metric in microseconds a record, small to large."""
    small, large = workloads.get("small"), workloads.get("large")
    low, high = value(small, key, metric), value(large, key, metric)
    if small is None or large is None or low is None or high is None:
        return None
    extra_records = large["total_records"] - small["total_records"]
    return (high - low) / extra_records * 1e6 if extra_records > 0 else None


def floor_slope(workloads: Workloads, metric: str) -> Best:
    """Return the better floor form's marginal cost of a metric."""
    found = [(v, key) for key in FLOORS if (v := slope_us(workloads, key, metric)) is not None]
    if not found:
        return Best(None, "")
    best, form = min(found)
    return Best(best, form)


def critical_path_s(workload: dict[str, Any]) -> tuple[float, int]:
    """Return the latency workload's critical path and the longest stream's page count.

    Pages as a floor counted them; the token request has no latency in the sandbox.
    """
    pages = 0
    for key in FLOORS:
        found = entry(workload, key)
        if found and found["pages"]:
            pages = max(found["pages"].values())
            break
    if not pages:
        pages = max(1, math.ceil(workload["per_stream"] / PAGE_SIZE))
    return pages * workload["latency_ms"] / 1000, pages


def growth_pct(small: float | None, large: float | None) -> float | None:
    """Return the growth in percent from small to large."""
    return None if small is None or large is None else (large / small - 1) * 100


@dataclass(frozen=True)
class Target:
    """One target of the tap, measured for tap defaults and for one stream at a time."""

    name: str
    goal: str
    unit: str
    limit: float
    measured: dict[str, float | None]

    def met(self, key: str) -> bool | None:
        """Tell whether a contender met the target; None when it was not measured."""
        measured = self.measured.get(key)
        return None if measured is None else measured <= self.limit


def startup_margin(workloads: Workloads, key: str, metric: str) -> float | None:
    """Return a contender's 0-record run minus `import singer_sdk`'s, in seconds of metric."""
    start = workloads.get("startup")
    run, sdk = value(start, key, metric), value(start, "import-sdk", metric)
    return None if run is None or sdk is None else run - sdk


def parallel_penalty(workloads: Workloads, key: str) -> float | None:
    """Return how much slower (a fraction) a contender is than max_parallel_streams 1."""
    cpu = workloads.get("cpu")
    found = ratio(value(cpu, key, "wall_s"), value(cpu, "tap1", "wall_s"))
    return None if found is None else found - 1


def rss_figures(workloads: Workloads, key: str) -> tuple[float | None, float | None]:
    """Return (highest peak RSS in MB, growth in %) from the small to the large memory run."""
    small = value(workloads.get("memory_small"), key, "peak_rss_mb")
    large = value(workloads.get("memory_large"), key, "peak_rss_mb")
    highest = None if small is None or large is None else max(small, large)
    return highest, growth_pct(small, large)


def targets(workloads: Workloads) -> list[Target]:
    """Return the tap's targets, each measured for `tap` and `tap1`."""
    cpu, latency = workloads.get("cpu"), workloads.get("latency")
    keys = ("tap", "tap1")

    def per_key(measure: Any) -> dict[str, float | None]:  # noqa: ANN401 - a small callable
        return {key: measure(key) for key in keys}

    marginal_floor = floor_slope(workloads, "cpu_s").value
    rows = [
        Target(
            "marginal CPU a record, x floor",
            "<= 1.3x",
            "x",
            1.3,
            per_key(lambda k: ratio(slope_us(workloads, k, "cpu_s"), marginal_floor)),
        ),
        Target(
            "CPU-bound wall time, x floor",
            "<= 1.3x",
            "x",
            1.3,
            per_key(lambda k: ratio(value(cpu, k, "wall_s"), floor(cpu, "wall_s").value)),
        ),
        Target(
            "CPU-bound CPU seconds (start-up included), x floor",
            "<= 1.6x",
            "x",
            1.6,
            per_key(lambda k: ratio(value(cpu, k, "cpu_s"), floor(cpu, "cpu_s").value)),
        ),
        Target(
            "CPU-bound wall time over max_parallel_streams 1's",
            f"<= {NOISE:+.0%} (noise)",
            "%",
            NOISE,
            {"tap": parallel_penalty(workloads, "tap"), "tap1": None},
        ),
    ]
    if latency:
        critical, _ = critical_path_s(latency)
        rows.append(
            Target(
                "latency-bound wall time, x critical path",
                "<= 1.15x",
                "x",
                1.15,
                per_key(lambda k: ratio(value(latency, k, "wall_s"), critical)),
            )
        )
    rows += [
        Target(
            "start-up (0 records) minus `import singer_sdk`, CPU",
            "<= 0.15 s",
            "s",
            0.15,
            per_key(lambda k: startup_margin(workloads, k, "cpu_s")),
        ),
        Target(
            "start-up (0 records) minus `import singer_sdk`, wall",
            "<= 0.15 s",
            "s",
            0.15,
            per_key(lambda k: startup_margin(workloads, k, "wall_s")),
        ),
        Target(
            "peak RSS, highest of small and large",
            "<= 60 MB",
            "MB",
            60.0,
            per_key(lambda k: rss_figures(workloads, k)[0]),
        ),
        Target(
            "peak RSS growth, small to large",
            f"<= {RSS_FLAT_PCT:.0f} % (flat)",
            "%",
            RSS_FLAT_PCT / 100,
            per_key(lambda k: _fraction(rss_figures(workloads, k)[1])),
        ),
    ]
    return rows


def _fraction(percent: float | None) -> float | None:
    """Return a percentage as a fraction."""
    return None if percent is None else percent / 100
