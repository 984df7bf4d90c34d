"""The benchmark harness: its smallest run works, its floor does the tap's job, its checks bite."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks"
sys.path.insert(0, str(BENCH))

from harness import analysis  # noqa: E402 - benchmarks/ is not a package
from harness.contenders import CONTENDERS  # noqa: E402
from harness.measure import Run, count_records, run_once  # noqa: E402
from harness.paths import SANDBOX_EXE  # noqa: E402
from harness.sandbox import Sandbox  # noqa: E402

STREAMS = ("customers", "sessions", "events", "campaigns")
pytestmark = pytest.mark.bench


def test_quick_run_measures_every_contender_and_checks_its_records(tmp_path):
    out = tmp_path / "results"
    command = [
        sys.executable,
        str(BENCH / "run.py"),
        "--quick",
        "--workloads",
        "startup,cpu,marginal",
        "--contenders",
        "floor-seq,floor-threads,tap,import-sdk",
        "--out",
        str(out),
    ]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    results = json.loads((out / "latest.json").read_text())
    assert set(results["workloads"]) == {"startup", "cpu", "small", "large"}
    for key in ("cpu", "small", "large"):
        workload = results["workloads"][key]
        assert set(workload["contenders"]) == {"floor-seq", "floor-threads", "tap"}
        for run in workload["runs"]:
            assert run["records"] == dict.fromkeys(STREAMS, workload["per_stream"])
            assert run["wall_s"] > 0
            assert run["cpu_s"] > 0
            assert run["server_cpu_s"] >= 0
    startup = results["workloads"]["startup"]["contenders"]
    assert set(startup) == {"floor-seq", "floor-threads", "tap", "import-sdk"}
    report = (out / "latest.md").read_text()
    assert "### Targets" in report
    assert "marginal CPU a record, x floor" in report


def singer_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def records_and_final_state(path: Path) -> tuple[dict[str, list[dict]], dict]:
    messages = singer_lines(path)
    records: dict[str, list[dict]] = {}
    for message in messages:
        if message["type"] == "RECORD":
            records.setdefault(message["stream"], []).append(message["record"])
    states = [message["value"] for message in messages if message["type"] == "STATE"]
    return records, states[-1]


@pytest.mark.parametrize("floor", ["floor-seq", "floor-threads"])
def test_floor_writes_the_records_and_bookmarks_the_tap_writes(tmp_path, floor):
    counts = {"customers": 1234, "sessions": 567, "events": 890, "campaigns": 101}
    with Sandbox(SANDBOX_EXE, counts, 0, tmp_path) as sandbox:
        for key in ("tap", floor):
            cmd = CONTENDERS[key].command(sandbox.base_url, tmp_path)
            run = run_once(key, cmd, counts, sandbox, keep_output=True)
            assert not run.error, run.error
    tap_records, tap_state = records_and_final_state(tmp_path / "tap.out")
    floor_records, floor_state = records_and_final_state(tmp_path / f"{floor}.out")
    assert floor_records == tap_records
    assert floor_state == tap_state
    assert set(floor_state["bookmarks"]) == set(STREAMS)


def test_a_contender_that_writes_fewer_records_fails(tmp_path):
    one_record = (
        "import sys; sys.stdout.write("
        '\'{"type":"RECORD","stream":"customers","record":{"id":"c1"}}\\n\')'
    )
    with Sandbox(SANDBOX_EXE, {"customers": 2}, 0, tmp_path) as sandbox:
        run = run_once("short", [sys.executable, "-c", one_record], {"customers": 2}, sandbox)
    assert run.exit_code == 0
    assert run.records == {"customers": 1}
    assert "customers: 1/2" in run.error


def test_output_that_is_not_singer_json_is_refused(tmp_path):
    out = tmp_path / "out"
    out.write_text('{"type": "RECORD", "stream": "customers"}\nnot json\n')
    with pytest.raises(ValueError, match="JSON"):
        count_records(out)


def test_a_run_is_server_bound_when_the_server_was_busy_most_of_it():
    def run(server_cpu_s: float) -> Run:
        return Run("tap", 0, 2.0, 1.0, 0.1, 50.0, server_cpu_s, 0)

    assert run(1.9).server_bound
    assert not run(1.0).server_bound


def test_marginal_cost_is_the_slope_between_the_small_and_the_large_run():
    def workload(per_stream: int, cpu_s: float) -> dict:
        contender = {"ok": True, "cpu_s": cpu_s}
        return {"total_records": 4 * per_stream, "contenders": {"tap": contender}}

    # 1.0 s at 20,000 records, 2.4 s at 160,000: 1.4 s for 140,000 more = 10 µs a record.
    workloads = {"small": workload(5_000, 1.0), "large": workload(40_000, 2.4)}
    assert analysis.slope_us(workloads, "tap", "cpu_s") == pytest.approx(10.0)


def test_docs_are_generated_from_the_committed_results(tmp_path):
    # The generator runs on a copy: a stale page is reported, never rewritten in the checkout.
    copy = tmp_path / "repo"
    shutil.copytree(BENCH, copy / "benchmarks", ignore=shutil.ignore_patterns(".work"))
    shutil.copytree(ROOT / "docs", copy / "docs")
    done = subprocess.run(
        [sys.executable, str(copy / "benchmarks" / "run.py"), "--docs"],
        cwd=copy,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    generated = [Path("docs/performance.md"), Path("benchmarks/results/latest.md")]
    generated += [path.relative_to(ROOT) for path in (BENCH / "results").glob("*.md")]
    stale = sorted(
        {str(path) for path in generated if (copy / path).read_text() != (ROOT / path).read_text()}
    )
    assert not stale, f"differ from their generator's output: {stale}"
