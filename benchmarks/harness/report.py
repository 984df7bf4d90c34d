"""Markdown tables of the results (benchmarks/results/*.md and docs/performance.md)."""

from __future__ import annotations

from typing import Any

from harness import analysis as an
from harness.contenders import REFERENCES

Lines = list[str]


def fmt(number: float | None, spec: str, suffix: str = "") -> str:
    """Format a number, or n/a when it is missing."""
    return "n/a" if number is None else f"{number:{spec}}{suffix}"


def row(*cells: str) -> str:
    """Return one markdown table row."""
    return "| " + " | ".join(cells) + " |"


def check(workload: dict[str, Any], key: str) -> str:
    """Return 'ok' or the first error of a contender, shortened."""
    return verdict(workload["contenders"][key])


def verdict(found: dict[str, Any]) -> str:
    """Return 'ok' or the first error of a summary, shortened."""
    if found["ok"]:
        return "ok"
    return "**FAILED**: " + str(found["errors"][0]).splitlines()[0][:120].replace("|", "/")


def server_bound(found: dict[str, Any]) -> str:
    """Return how many of a contender's runs the server was the bottleneck of."""
    bound = found["server_bound_runs"]
    return f"**{bound}/{found['rounds']}**" if bound else "no"


def label(workload: dict[str, Any], key: str) -> str:
    """Return a contender's label as recorded with the results."""
    return str(workload["contenders"][key]["label"])


def header(meta: dict[str, Any]) -> Lines:
    """Return the context line of a run."""
    quick = " · **quick run: sizes too small to compare**" if meta["quick"] else ""
    loads = meta["load_average_before"]
    return [
        (
            f"Run {meta['date']} · commit `{meta['commit']}` · {meta['cpus']} CPUs · load average"
            f" {loads[0]} before the run (1-minute) · Python {meta['python']} · singer-sdk"
            f" {meta['singer_sdk']} · median of {meta['rounds']} alternating round(s){quick}"
        )
    ]


def cpu_section(workload: dict[str, Any]) -> Lines:
    """Return the CPU-bound table: wall and CPU beside each other, with the server's CPU."""
    wall_floor = an.floor(workload, "wall_s")
    cpu_floor = an.floor(workload, "cpu_s")
    lines = [
        (
            f"### CPU-bound: 4 streams x {workload['per_stream']:,} records,"
            f" no latency (floor: wall of {wall_floor.form}, CPU of {cpu_floor.form})"
        ),
        "",
        row(
            "contender",
            "wall (s)",
            "x floor",
            "CPU (s)",
            "x floor",
            "user / sys (s)",
            "server CPU (s)",
            "server-bound runs",
            "peak RSS (MB)",
            "check",
        ),
        "|---|---:|---:|---:|---:|---:|---:|---|---:|---|",
    ]
    for key, found in workload["contenders"].items():
        ok = found["ok"]
        wall = found["wall_s"] if ok else None
        cpu = found["cpu_s"] if ok else None
        lines.append(
            row(
                label(workload, key),
                fmt(wall, ".2f"),
                fmt(an.ratio(wall, wall_floor.value), ".2f", "x"),
                fmt(cpu, ".2f"),
                fmt(an.ratio(cpu, cpu_floor.value), ".2f", "x"),
                f"{found['user_s']:.2f} / {found['sys_s']:.2f}",
                fmt(found["server_cpu_s"], ".2f"),
                server_bound(found),
                fmt(found["peak_rss_mb"], ".0f"),
                check(workload, key),
            )
        )
    lines += ["", f"Wall range per contender (s): {ranges(workload)}."]
    return lines


def ranges(workload: dict[str, Any]) -> str:
    """Return every contender's min-max wall time, to show the noise."""
    return "; ".join(
        f"{key} {min(found['walls_s']):.2f}-{max(found['walls_s']):.2f}"
        for key, found in workload["contenders"].items()
    )


def startup_section(workload: dict[str, Any]) -> Lines:
    """Return the start-up table: 0-record runs and the reference processes."""
    sdk_wall = an.value(workload, "import-sdk", "wall_s")
    sdk_cpu = an.value(workload, "import-sdk", "cpu_s")
    lines = [
        "### Start-up: a run that extracts 0 records (4 empty streams), and reference processes",
        "",
        row(
            "process",
            "wall (s)",
            "CPU (s)",
            "wall minus `import singer_sdk` (s)",
            "CPU minus `import singer_sdk` (s)",
            "peak RSS (MB)",
            "check",
        ),
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for key, found in workload["contenders"].items():
        ok = found["ok"] and key not in REFERENCES
        wall, cpu = found["wall_s"], found["cpu_s"]
        lines.append(
            row(
                label(workload, key),
                fmt(wall, ".2f"),
                fmt(cpu, ".2f"),
                fmt(wall - sdk_wall if ok and sdk_wall is not None else None, "+.2f"),
                fmt(cpu - sdk_cpu if ok and sdk_cpu is not None else None, "+.2f"),
                fmt(found["peak_rss_mb"], ".0f"),
                check(workload, key),
            )
        )
    return lines


def marginal_section(workloads: an.Workloads) -> Lines:
    """Return the marginal cost table: slopes between the small and the large workload."""
    small, large = workloads["small"], workloads["large"]
    best = an.floor_slope(workloads, "cpu_s")
    lines = [
        (
            f"### Marginal cost a record: slope from {small['per_stream']:,} to"
            f" {large['per_stream']:,} records per stream (floor: {best.form})"
        ),
        "",
        "µs a record = ms per 1,000 records.",
        "",
        row(
            "contender",
            "CPU µs/record",
            "x floor",
            "wall µs/record",
            "server CPU µs/record",
            f"CPU @ {small['per_stream']:,} (s)",
            f"CPU @ {large['per_stream']:,} (s)",
            "peak RSS @ large (MB)",
        ),
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for key in large["contenders"]:
        slope = an.slope_us(workloads, key, "cpu_s")
        lines.append(
            row(
                label(large, key),
                fmt(slope, ".1f"),
                fmt(an.ratio(slope, best.value), ".2f", "x"),
                fmt(an.slope_us(workloads, key, "wall_s"), ".1f"),
                fmt(an.slope_us(workloads, key, "server_cpu_s"), ".1f"),
                fmt(an.value(small, key, "cpu_s"), ".2f"),
                fmt(an.value(large, key, "cpu_s"), ".2f"),
                fmt(an.value(large, key, "peak_rss_mb"), ".0f"),
            )
        )
    return lines


def latency_section(workload: dict[str, Any]) -> Lines:
    """Return the latency-bound table against the critical path and the floor."""
    critical, pages = an.critical_path_s(workload)
    best = an.floor(workload, "wall_s")
    lines = [
        (
            f"### Latency-bound: 4 streams x {workload['per_stream']:,} records,"
            f" {workload['latency_ms']} ms a request (floor: {best.form})"
        ),
        "",
        (
            f"Critical path: the longest stream's {pages} pages x {workload['latency_ms']} ms ="
            f" {critical:.2f} s, the least any client could take. Streams synced one after another"
            " need about 4 critical paths, so they run in the first round only."
        ),
        "",
        row(
            "contender",
            "wall (s)",
            "x critical path",
            "x floor",
            "CPU (s)",
            "server CPU (s)",
            "rounds",
            "check",
        ),
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for key, found in workload["contenders"].items():
        wall = found["wall_s"] if found["ok"] else None
        lines.append(
            row(
                label(workload, key),
                fmt(wall, ".2f"),
                fmt(an.ratio(wall, critical), ".2f", "x"),
                fmt(an.ratio(wall, best.value), ".2f", "x"),
                fmt(found["cpu_s"], ".2f"),
                fmt(found["server_cpu_s"], ".2f"),
                str(found["rounds"]),
                check(workload, key),
            )
        )
    return lines


def memory_section(small: dict[str, Any], large: dict[str, Any]) -> Lines:
    """Return the peak RSS table, small vs large."""
    lines = [
        (
            f"### Memory: peak RSS (`wait4` of the process) at {small['per_stream']:,} and"
            f" {large['per_stream']:,} records per stream, 1 round"
        ),
        "",
        row(
            "contender",
            f"RSS @ {small['per_stream']:,} (MB)",
            f"RSS @ {large['per_stream']:,} (MB)",
            "growth",
            f"wall @ {large['per_stream']:,} (s)",
            f"CPU @ {large['per_stream']:,} (s)",
            "check",
        ),
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for key in small["contenders"]:
        low = an.value(small, key, "peak_rss_mb")
        high = an.value(large, key, "peak_rss_mb")
        ran_large = key in large["contenders"]
        lines.append(
            row(
                label(small, key),
                fmt(low, ".1f"),
                fmt(high, ".1f") if ran_large else "not run",
                fmt(an.growth_pct(low, high), "+.0f", " %"),
                fmt(an.value(large, key, "wall_s"), ".2f"),
                fmt(an.value(large, key, "cpu_s"), ".2f"),
                check(large, key) if ran_large else check(small, key),
            )
        )
    return lines


def measured(target: an.Target, key: str) -> tuple[str, str]:
    """Return a target's measured value and verdict for one contender, formatted."""
    number = target.measured.get(key)
    if number is None:
        return "n/a", "n/a"
    text = {
        "x": f"{number:.2f}x",
        "%": f"{number * 100:+.0f} %",
        "s": f"{number:+.2f} s",
        "MB": f"{number:.0f} MB",
    }[target.unit]
    return text, "yes" if target.met(key) else "**no**"


def targets_section(workloads: an.Workloads) -> Lines:
    """Return the targets table for tap defaults and max_parallel_streams 1."""
    lines = [
        "### Targets",
        "",
        row("target", "goal", "tap, defaults", "met", "tap, max_parallel_streams 1", "met"),
        "|---|---|---:|---|---:|---|",
    ]
    lines.extend(
        row(target.name, target.goal, *measured(target, "tap"), *measured(target, "tap1"))
        for target in an.targets(workloads)
    )
    return lines


def pipeline_section(pipeline: dict[str, Any]) -> Lines:
    """Return the end-to-end pipeline table and the tap's share of it."""
    if "skipped" in pipeline:
        return ["### Pipeline", "", f"Not measured: {pipeline['skipped']}."]
    shipped = next(iter(pipeline["variants"].values()))
    runs = {**pipeline["alone"], "`meltano run`, meltano.yml as shipped": shipped}
    tap = pipeline["alone"]["tap alone"]
    share = an.ratio(tap["wall_s"], shipped["wall_s"]) if shipped["ok"] and tap["ok"] else None
    cpu_share = an.ratio(tap["cpu_s"], shipped["cpu_s"]) if shipped["ok"] and tap["ok"] else None
    lines = [
        (
            f"### Pipeline: `meltano run tap-analytics target-postgres`, 4 streams x"
            f" {pipeline['per_stream']:,} records into PostgreSQL, median of {pipeline['rounds']}"
        ),
        "",
        row("run", "wall (s)", "CPU (s)", "PostgreSQL CPU (s)", "check"),
        "|---|---:|---:|---:|---|",
    ]
    for name, found in runs.items():
        lines.append(
            row(
                name,
                fmt(found["wall_s"], ".2f"),
                fmt(found["cpu_s"], ".2f"),
                fmt(found["postgres_cpu_s"], ".2f"),
                verdict(found),
            )
        )
    return [
        *lines,
        "",
        (
            f"The tap alone takes {fmt(share, '.0%')} of the pipeline's wall time and"
            f" {fmt(cpu_share, '.0%')} of its CPU. The tap and the loader alone run the plugin"
            " venvs' executables with the config Meltano gives them; the loader alone reads the"
            " tap's output from a file. CPU of `meltano run` is Meltano's, the tap's and the"
            " loader's together (every process it waited for); PostgreSQL CPU is the whole"
            " server's over the run, other clients included."
        ),
    ]


def loader_section(loader: dict[str, Any]) -> Lines:
    """Return the loader settings table."""
    variants = loader["variants"]
    shipped = variants[next(iter(variants))]
    lines = [
        (
            f"### target-postgres settings: `meltano run` wall time, 4 streams x"
            f" {loader['per_stream']:,} records, median of {loader['rounds']} alternating round(s)"
        ),
        "",
        *header(loader["meta"]),
        "",
        row(
            "settings (over meltano.yml's)",
            "wall (s)",
            "x shipped",
            "CPU (s)",
            "PostgreSQL CPU (s)",
            "check",
            "trade-off",
        ),
        "|---|---:|---:|---:|---:|---|---|",
    ]
    for key, found in variants.items():
        wall = found["wall_s"] if found["ok"] else None
        lines.append(
            row(
                key,
                fmt(wall, ".2f"),
                fmt(an.ratio(wall, shipped["wall_s"]), ".2f", "x"),
                fmt(found["cpu_s"], ".2f"),
                fmt(found["postgres_cpu_s"], ".2f"),
                verdict(found),
                found["trade_off"] or "-",
            )
        )
    return lines


def body(results: dict[str, Any]) -> Lines:
    """Return every table of a run's results but the targets."""
    workloads = results["workloads"]
    lines: Lines = []
    if "cpu" in workloads:
        lines += ["", *cpu_section(workloads["cpu"])]
    if "startup" in workloads:
        lines += ["", *startup_section(workloads["startup"])]
    if "small" in workloads and "large" in workloads:
        lines += ["", *marginal_section(workloads)]
    if "latency" in workloads:
        lines += ["", *latency_section(workloads["latency"])]
    if "memory_small" in workloads and "memory_large" in workloads:
        lines += ["", *memory_section(workloads["memory_small"], workloads["memory_large"])]
    if "pipeline" in results:
        lines += ["", *pipeline_section(results["pipeline"])]
    return lines


def render(results: dict[str, Any]) -> str:
    """Return benchmarks/results/latest.md."""
    title = "# Benchmark: floor, tap-analytics, a stock singer-sdk tap"
    targets = targets_section(results["workloads"])
    return "\n".join([title, "", *header(results["meta"]), "", *targets, *body(results)]) + "\n"


def render_loader(loader: dict[str, Any]) -> str:
    """Return benchmarks/results/loader.md."""
    return "\n".join(["# Benchmark: the loader's settings", "", *loader_section(loader)]) + "\n"
