"""Render the results as a markdown table (benchmarks/results/latest.md)."""

from __future__ import annotations

from typing import Any

from harness.contenders import ALL

TARGET_CPU_X_FLOOR = 2.0
TARGET_LATENCY_X = 1.3
TARGET_RSS_GROWTH_PCT = 25.0


def ratio(value: float | None, base: float | None) -> float | None:
    """Return value / base, or None when either is missing."""
    return value / base if value is not None and base else None


def fmt(value: float | None, spec: str, suffix: str = "") -> str:
    """Format a number, or a dash when it is missing."""
    return "n/a" if value is None else f"{value:{spec}}{suffix}"


def wall(workload: dict[str, Any], key: str) -> float | None:
    """Return a contender's median wall time if it ran and passed."""
    entry = workload["contenders"].get(key)
    return entry["wall_median_s"] if entry and entry["ok"] else None


def rss(workload: dict[str, Any] | None, key: str) -> float | None:
    """Return a contender's median peak RSS if it ran and passed."""
    entry = workload["contenders"].get(key) if workload else None
    return entry["peak_rss_mb"] if entry and entry["ok"] else None


def growth(small: float | None, large: float | None) -> float | None:
    """Return the growth in percent from small to large."""
    return None if small is None or large is None else (large / small - 1) * 100


def status(workload: dict[str, Any], key: str) -> str:
    """Return 'ok' or the first error of a contender, shortened."""
    entry = workload["contenders"][key]
    return "ok" if entry["ok"] else "**FAILED**: " + entry["errors"][0].splitlines()[0][:120]


def timing_section(workload: dict[str, Any]) -> list[str]:
    """Return the table of one timed workload (CPU- or latency-bound)."""
    floor = wall(workload, "floor")
    critical = workload.get("critical_path_s")
    head = "| contender | wall median (s) | x floor |"
    rule = "|---|---:|---:|"
    if critical:
        head, rule = head + " x critical path |", rule + "---:|"
    lines = [
        head + " range (s) | records/s | peak RSS (MB) | check |",
        rule + "---:|---:|---:|---|",
    ]
    for key in workload["contenders"]:
        seconds = wall(workload, key)
        cells = [ALL[key].label, fmt(seconds, ".2f"), fmt(ratio(seconds, floor), ".2f", "x")]
        if critical:
            cells.append(fmt(ratio(seconds, critical), ".2f", "x"))
        rate = ratio(workload["total_records"], seconds)
        walls = workload["contenders"][key]["walls_s"]
        cells += [f"{min(walls):.2f}-{max(walls):.2f}", fmt(rate, ",.0f")]
        cells += [fmt(rss(workload, key), ".0f"), status(workload, key)]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def timing_heading(workload: dict[str, Any]) -> str:
    """Return the heading of one timed workload."""
    text = (
        f"### {workload['title']}: 4 streams x {workload['per_stream']:,} records"
        f" = {workload['total_records']:,}, {workload['latency_ms']} ms per request,"
        f" median of {workload['rounds']} round(s)"
    )
    if workload.get("critical_path_s"):
        text += (
            f"\n\nCritical path: longest stream {workload['longest_stream_pages']} pages"
            f" x {workload['latency_ms']} ms = {workload['critical_path_s']:.2f} s."
        )
    return text


def memory_section(small: dict[str, Any], large: dict[str, Any]) -> list[str]:
    """Return the peak-RSS table, small vs large."""
    lines = [
        (
            f"### Memory: peak RSS at {small['per_stream']:,} vs {large['per_stream']:,}"
            f" records per stream, median of {large['rounds']} round(s)"
        ),
        "",
        (
            f"| contender | RSS @ {small['per_stream']:,} (MB) | RSS @ {large['per_stream']:,} (MB)"
            " | growth | wall @ large (s) | check |"
        ),
        "|---|---:|---:|---:|---:|---|",
    ]
    for key in large["contenders"]:
        low, high = rss(small, key), rss(large, key)
        checks = {status(small, key), status(large, key)} if key in small["contenders"] else {"?"}
        cells = [
            ALL[key].label,
            fmt(low, ".1f"),
            fmt(high, ".1f"),
            fmt(growth(low, high), "+.0f", " %"),
            fmt(wall(large, key), ".2f"),
            " / ".join(sorted(checks)),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def target_rows(workloads: dict[str, Any]) -> list[tuple[str, str, float | None, float]]:
    """Return (name, unit, measured, limit) for each issue-5 target that was measured."""
    rows: list[tuple[str, str, float | None, float]] = []
    if cpu := workloads.get("cpu"):
        value = ratio(wall(cpu, "tap"), wall(cpu, "floor"))
        rows.append(("CPU-bound wall time, x floor", "x", value, TARGET_CPU_X_FLOOR))
    if lat := workloads.get("latency"):
        value = ratio(wall(lat, "tap"), lat.get("critical_path_s"))
        rows.append(("Latency-bound wall time, x critical path", "x", value, TARGET_LATENCY_X))
    if (small := workloads.get("memory_small")) and (large := workloads.get("memory_large")):
        value = growth(rss(small, "tap"), rss(large, "tap"))
        rows.append(("Peak RSS growth, small to large", " %", value, TARGET_RSS_GROWTH_PCT))
    return rows


def targets(workloads: dict[str, Any]) -> list[str]:
    """Return the issue-5 targets for tap-analytics, measured."""
    lines = ["| target (tap-analytics) | goal | measured | met |", "|---|---:|---:|---|"]
    for name, unit, value, limit in target_rows(workloads):
        spec = ".2f" if unit == "x" else "+.0f"
        met = "n/a" if value is None else ("yes" if value <= limit else "**no**")
        lines.append(f"| {name} | <= {limit:g}{unit} | {fmt(value, spec, unit)} | {met} |")
    return lines


def header(meta: dict[str, Any]) -> list[str]:
    """Return the title and the context line."""
    quick = " · **quick run, not comparable**" if meta["quick"] else ""
    return [
        "# Benchmark: floor vs tap-analytics vs a stock singer-sdk tap",
        "",
        (
            f"{meta['date']} · commit `{meta['commit']}` · {meta['cpus']} CPUs"
            f" · load average {meta.get('load_average_before', ['?'])[0]} before the run"
            f" · Python {meta['python']} · singer-sdk {meta['singer_sdk']}{quick}"
        ),
        "",
        (
            "Ratios are the result; absolute times are context only. Every contender runs as"
            " a subprocess (start-up included) against the same sandbox process; its RECORD"
            " messages are counted and must match the sandbox's record counts."
        ),
    ]


def render(results: dict[str, Any]) -> str:
    """Return the whole markdown report."""
    return "\n".join([*header(results["meta"]), *body(results["workloads"])]) + "\n"


def body(workloads: dict[str, Any]) -> list[str]:
    """Return the tables, without the title."""
    lines: list[str] = []
    for key in ("cpu", "latency"):
        if key in workloads:
            lines += ["", timing_heading(workloads[key]), "", *timing_section(workloads[key])]
    if "memory_small" in workloads and "memory_large" in workloads:
        lines += ["", *memory_section(workloads["memory_small"], workloads["memory_large"])]
    lines += ["", "### Targets (issue 5)", "", *targets(workloads)]
    return lines


def readme_block(results: dict[str, Any]) -> str:
    """Return the text that goes between the README's benchmark markers."""
    meta = results["meta"]
    intro = (
        f"Latest `make bench` ({meta['date']}, commit `{meta['commit']}`, {meta['cpus']} CPUs);"
        " chart: `benchmarks/results/latest.png`."
    )
    return "\n".join([intro, *body(results["workloads"])]) + "\n"
