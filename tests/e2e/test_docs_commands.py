"""Every ```sh block of the README and docs/ runs as written, in a fresh clone, with a sandbox."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import typing as t
from dataclasses import dataclass

import pytest
import yaml
from e2ekit import BIN, ROOT, STREAMS, UNREACHABLE_HUB

from tap_analytics.sandbox import SandboxServer

if t.TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

pytestmark = pytest.mark.e2e
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```sh\n(.*?)^```$", re.MULTILINE | re.DOTALL)
PAGE_TIMEOUT = 900  # seconds: pip and meltano installs included
OWN_PREFIXES = ("MELTANO_", "TAP_ANALYTICS_", "TARGET_JSONL_", "TARGET_POSTGRES_", "SANDBOX_")


def relative(page: Path) -> str:
    """A page's path in the repository."""
    return page.relative_to(ROOT).as_posix()


def shell_blocks(page: Path) -> list[str]:
    """The blocks a reader is told to run: those tagged sh."""
    return FENCE.findall(page.read_text(encoding="utf-8"))


def records(path: Path) -> list[dict[str, t.Any]]:
    """The RECORD messages of a file of Singer messages."""
    messages = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [m for m in messages if m.get("type") == "RECORD"]


def lines(path: Path) -> int:
    """The number of lines of a file."""
    return len(path.read_text().splitlines())


@dataclass
class Session:
    """One page's blocks, run in order in one bash process."""

    workdir: Path
    returncode: int
    output: str


def clone(destination: Path) -> Path:
    """Copy the repository's files (tracked, or new and not ignored) as a fresh clone has them."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.is_file():
            target = destination / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return destination


def environment(sandbox_url: str) -> dict[str, str]:
    """The caller's environment less our own variables; the project's venv first on PATH."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(OWN_PREFIXES)}
    env.pop("VIRTUAL_ENV", None)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["SANDBOX_URL"] = sandbox_url
    env["MELTANO_HUB_URL"] = UNREACHABLE_HUB
    return env


def script(page: Path) -> str:
    """The page's ```sh blocks as one bash script that stops at the first failing command."""
    parts = ["set -eo pipefail"]
    for number, text in enumerate(shell_blocks(page), start=1):
        parts += [f"echo '>>> {relative(page)}, block {number}' >&2", text]
    return "\n".join(parts) + "\n"


def run_page(page: Path, tmp_path: Path, sandbox_url: str) -> Session:
    """Run a page's blocks in a fresh clone named tap-analytics; stop what they left running."""
    workdir = clone(tmp_path / "tap-analytics")
    log = tmp_path / "session.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            ["bash", "-c", script(page)],
            cwd=workdir,
            env=environment(sandbox_url),
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # one process group: background jobs are stopped with it
        )
        try:
            returncode = process.wait(timeout=PAGE_TIMEOUT)
        except subprocess.TimeoutExpired:
            returncode = -1
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            process.wait()
    return Session(workdir, returncode, log.read_text(errors="replace"))


def check_readme(session: Session) -> None:
    """The Quick start's sync, its target and its state pipe did what the README says."""
    work = session.workdir
    catalog = json.loads((work / "catalog.json").read_text())
    assert sorted(s["tap_stream_id"] for s in catalog["streams"]) == sorted(STREAMS)
    synced = records(work / "out.jsonl")
    assert {r["stream"] for r in synced} == set(STREAMS)
    states = [json.loads(line) for line in (work / "states.jsonl").read_text().splitlines()]
    assert len(states) == 2, "one state per run"
    assert json.loads((work / "state.json").read_text()) == states[-1]
    assert set(states[-1]["bookmarks"]) == set(STREAMS)
    loaded = sum(lines(work / "output" / f"{stream}.jsonl") for stream in STREAMS)
    second_run = loaded - len(synced)  # the first run loads what the plain sync wrote
    # Nothing changed between the runs: an incremental run reads none again, not even the
    # records at the bookmark's instant (the state keeps their keys).
    assert second_run == 0, "the second run is incremental"


def check_meltano(session: Session) -> None:
    """Meltano ran with no variable set, and kept the secret out of meltano.yml."""
    work = session.workdir
    for stream in STREAMS:
        assert lines(work / "output" / f"{stream}.jsonl") > 0, stream
    # The tap's word for a missing setting (`meltano config list` says "is required" of groups).
    assert not re.search(r"Setting '[\w.]+' is required", session.output)
    assert "my-client-secret" in (work / ".env").read_text()
    assert "my-client-secret" not in (work / "meltano.yml").read_text()
    catalog = json.loads((work / "catalog.json").read_text())
    assert {s["tap_stream_id"] for s in catalog["streams"]} == set(STREAMS)
    project = yaml.safe_load((work / "meltano.yml").read_text())
    (tap,) = [p for p in project["plugins"]["extractors"] if p["name"] == "tap-analytics"]
    assert "events.*" not in tap["select"]
    assert "!customers.email" in tap["select"]
    other = work.parent / "my-project"
    assert {r["stream"] for r in records(other / "out.jsonl")} == set(STREAMS)
    assert "sandbox-secret" not in (other / "meltano.yml").read_text()


def check_resources(session: Session) -> None:
    """The declared resource became a stream and was synced."""
    work = session.workdir
    catalog = json.loads((work / "declared-catalog.json").read_text())
    assert "resource_name" in {s["tap_stream_id"] for s in catalog["streams"]}
    assert any(r["stream"] == "resource_name" for r in records(work / "declared.jsonl"))


def check_api(session: Session) -> None:
    """The hand-made requests got a token and a page of two customers."""
    page = json.loads((session.workdir / "page.json").read_text())
    assert len(page["data"]) == 2
    assert "after" in page["paging"]["next"]


CHECKS: dict[str, Callable[[Session], None]] = {
    "README.md": check_readme,
    "docs/meltano.md": check_meltano,
    "docs/resources.md": check_resources,
    "docs/api.md": check_api,
}


@pytest.fixture
def sandbox_url() -> Iterator[str]:
    """A fresh sandbox for one page, as a reader who followed the Quick start has one."""
    with SandboxServer() as server:
        yield server.base_url


SLOWEST_PAGE = "docs/meltano.md"  # it installs into fresh Meltano projects: make test-full
CASES = [
    pytest.param(
        page, id=relative(page), marks=[pytest.mark.full] * (relative(page) == SLOWEST_PAGE)
    )
    for page in PAGES
    if shell_blocks(page)
]


@pytest.mark.parametrize("page", CASES)
@pytest.mark.usefixtures("docs_port_busy")  # no command needs a particular port free
def test_page_commands_run_as_written(page: Path, tmp_path: Path, sandbox_url: str) -> None:
    session = run_page(page, tmp_path, sandbox_url)
    assert session.returncode == 0, f"exit {session.returncode}:\n{session.output[-6000:]}"
    check = CHECKS.get(relative(page))
    if check is not None:
        check(session)
