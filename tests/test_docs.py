"""The README and docs/: blocks tagged as run or not, links kept inside, generated text current."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import typing as t
from pathlib import Path

import psutil
import pytest
import requests
import yaml

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```([\w-]*)\n(.*?)^```$", re.MULTILINE | re.DOTALL)
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
TAGS = {"sh", "text", "json", "yaml", "sql"}
NOT_RUN = "not run by the tests"
STREAMS = ("customers", "sessions", "events", "campaigns")
README_WORDS = 1400  # 1200, and the first screen's table of the make targets and their times


def relative(page: Path) -> str:
    """A page's path in the repository."""
    return page.relative_to(ROOT).as_posix()


def blocks(page: Path) -> list[tuple[str, str]]:
    """Every fenced block of a page: its tag and its text."""
    return [(m.group(1), m.group(2)) for m in FENCE.finditer(page.read_text(encoding="utf-8"))]


@pytest.mark.parametrize("page", PAGES, ids=relative)
def test_blocks_are_tagged_run_or_not_run(page: Path) -> None:
    for tag, text in blocks(page):
        assert tag in TAGS, f"{relative(page)}: a block tagged {tag!r}:\n{text}"
        if tag == "text":
            first = text.splitlines()[0]
            assert first.startswith("#"), f"{relative(page)}: say why it is not run:\n{text}"
            assert NOT_RUN in first, f"{relative(page)}: {first!r} lacks {NOT_RUN!r}"


@pytest.mark.parametrize("page", PAGES, ids=relative)
def test_links_stay_in_the_repository(page: Path) -> None:
    for target in LINK.findall(page.read_text(encoding="utf-8")):
        if target.startswith("https://"):
            assert "/issues" not in target, target
            continue
        path = target.split("#")[0]
        if not path:
            continue
        resolved = (page.parent / path).resolve()
        assert resolved.is_relative_to(ROOT), f"{relative(page)}: {target} leaves the repository"
        assert resolved.exists(), f"{relative(page)}: {target} does not exist"


def test_every_test_a_page_names_exists() -> None:
    defined = {
        name
        for module in (ROOT / "tests").rglob("test_*.py")
        for name in re.findall(r"^def (test_\w+)", module.read_text(encoding="utf-8"), re.MULTILINE)
    }
    for page in PAGES:
        named = set(re.findall(r"::(test_\w+)", page.read_text(encoding="utf-8")))
        assert named <= defined, f"{relative(page)} names no such test: {sorted(named - defined)}"


def test_nothing_cites_an_issue_tracker() -> None:
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    citation = re.compile(r"\bissues? #?\d+|\.\./shared/", re.IGNORECASE)
    found = []
    for name in listed:
        path = ROOT / name
        if path.suffix in {".png", ".lock"} or not path.is_file():
            continue
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), start=1):
            if citation.search(line):
                found.append(f"{name}:{number}: {line.strip()}")
    assert found == []


def test_readme_is_short() -> None:
    assert len((ROOT / "README.md").read_text().split()) <= README_WORDS


def schema_type(schema: dict[str, t.Any]) -> tuple[str, bool]:
    """How docs/api.md names a field's type, and whether it can be null."""
    found = schema.get("type", [])
    types = [found] if isinstance(found, str) else list(found)
    nullable = "null" in types
    (kind,) = [kind for kind in types if kind != "null"]
    named = {"date-time": "timestamp", "date": "date"}.get(schema.get("format", ""), kind)
    return named, nullable


def test_api_page_lists_every_field_of_every_stream_as_discovered() -> None:
    discovered = subprocess.run(
        [str(BIN / "tap-analytics"), "--discover"], capture_output=True, text=True, check=True
    ).stdout
    streams = {s["tap_stream_id"]: s["schema"] for s in json.loads(discovered)["streams"]}
    text = (ROOT / "docs" / "api.md").read_text()
    for stream in STREAMS:
        section = text.split(f"### {stream}\n", 1)[1].split("\n#", 1)[0]
        rows = re.findall(r"^\| `(\w+)` \| ([^|]+) \|", section, re.MULTILINE)
        documented = {name: kind.strip() for name, kind in rows}
        properties = streams[stream]["properties"]
        assert sorted(documented) == sorted(properties), stream
        for name, kind in documented.items():
            named, nullable = schema_type(properties[name])
            assert kind == (f"{named} or null" if nullable else named), f"{stream}.{name}"


def test_readme_installs_the_target_jsonl_that_meltano_pins() -> None:
    project = yaml.safe_load((ROOT / "meltano.yml").read_text())
    (loader,) = [p for p in project["plugins"]["loaders"] if p["name"] == "target-jsonl"]
    assert f"pip install {loader['pip_url']}" in (ROOT / "README.md").read_text()


FIXED_PORT = re.compile(r"--port[ =](?!0\b)\d+|(?:127\.0\.0\.1|localhost):(?!5432\b)\d+")


def test_no_command_or_setting_needs_a_particular_port() -> None:
    # PostgreSQL's 5432 is a server the machine runs, not a port a command needs free.
    files = [*PAGES, ROOT / "meltano.yml", ROOT / "Makefile", ROOT / ".ci" / "run"]
    files += sorted((ROOT / "scripts").iterdir())
    found = [
        f"{relative(path)}: {match}"
        for path in files
        for match in FIXED_PORT.findall(path.read_text(encoding="utf-8"))
    ]
    assert found == []


def test_the_quick_start_starts_the_sandbox_while_the_docs_port_is_busy(
    tmp_path: Path, docs_port_busy: int
) -> None:
    start = next(text for tag, text in blocks(ROOT / "README.md") if "sandbox" in text)
    environment = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    shell = ["bash", "-c", f"set -eo pipefail\n{start}"]
    done = subprocess.run(shell, cwd=tmp_path, env=environment, capture_output=True, check=False)
    process = psutil.Process(int((tmp_path / "sandbox.pid").read_text()))
    try:
        assert done.returncode == 0, done.stderr
        url = (tmp_path / "sandbox.url").read_text().strip()
        assert not url.endswith(f":{docs_port_busy}")
        assert requests.get(f"{url}/_sandbox/counts", timeout=60).ok
    finally:
        process.terminate()
        process.wait(60)


def test_readme_first_screen_times_every_make_target() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    first_screen = "\n".join(readme.splitlines()[:50])
    row = re.compile(r"^\| `make ([\w-]+)` \|[^|]*\| ([^|]*) \|$", re.MULTILINE)
    rows = dict(row.findall(first_screen))
    phony = re.findall(r"^\.PHONY:(.*)$", (ROOT / "Makefile").read_text(), re.MULTILINE)
    assert set(rows) == {target for line in phony for target in line.split()}
    untimed = [target for target, time in rows.items() if not re.search(r"\d+ (s|min)", time)]
    assert untimed == []
    assert "pip install -e ." in first_screen
    assert "not Meltano" in first_screen
