"""What `meltano config` shows of the extractor, from meltano.yml alone (the Hub unreachable)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import typing as t

import pytest
from e2ekit import MELTANO, ROOT, TAP, Meltano, base_env

if t.TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.e2e
LINES = re.MULTILINE
SECRET = "client-block-secret-7f3a9c"
CLIENT_BLOCK = {
    "base_url": "http://127.0.0.1:9",
    "auth": {"client_id": "block-client", "client_secret": SECRET},
}
# Every way `meltano config` shows a plugin's settings.
SHOWING_COMMANDS = [
    ("config", "list", "tap-analytics"),
    ("config", "list", "tap-analytics", "--all"),
    ("--log-level=debug", "config", "list", "tap-analytics", "--all"),
    ("config", "print", "tap-analytics"),
    ("config", "print", "tap-analytics", "--format=json"),
    ("config", "print", "tap-analytics", "--format=env"),
]


@pytest.fixture
def meltano(tmp_path: Path) -> Meltano:
    return Meltano(base_env(tmp_path), tmp_path)


def output(meltano: Meltano, *args: str, extra: dict[str, str] | None = None) -> str:
    """A command's stdout and stderr together."""
    stdout = meltano(*args, extra=extra)
    with open(meltano.runs[-1], encoding="utf-8") as log:  # noqa: PTH123 - a path string
        return stdout + log.read()


def test_config_list_shows_the_taps_own_defaults(meltano: Meltano) -> None:
    about = json.loads(
        subprocess.run(
            [str(TAP), "--about", "--format", "json"], capture_output=True, text=True, check=True
        ).stdout
    )
    listed = meltano("config", "list", "tap-analytics", "--all")
    page_size = r"^page_size \[.*\] current value: 100 \(default\)$"
    assert re.search(page_size, listed, LINES), listed
    properties = about["settings"]["properties"].items()
    defaults = {k: v["default"] for k, v in properties if v.get("default") is not None}
    assert len(defaults) >= 8
    for name, default in defaults.items():
        line = rf"^{re.escape(name)} .*current value: {re.escape(repr(default))} \(default\)$"
        assert re.search(line, listed, LINES), f"{name} not shown as {default!r}:\n{listed}"


@pytest.mark.parametrize("command", SHOWING_COMMANDS, ids=" ".join)
def test_a_secret_inside_the_client_block_is_never_shown(
    meltano: Meltano, command: tuple[str, ...]
) -> None:
    shown = output(meltano, *command, extra={"TAP_ANALYTICS_CLIENT": json.dumps(CLIENT_BLOCK)})
    assert SECRET not in shown
    assert SECRET[:10] not in shown


def test_the_client_block_alone_is_a_complete_group(meltano: Meltano) -> None:
    listed = meltano(
        "config", "list", "tap-analytics", extra={"TAP_ANALYTICS_CLIENT": json.dumps(CLIENT_BLOCK)}
    )
    assert "Required settings: base_url, client_id, client_secret" not in listed
    assert "Group 1: base_url, client_id, client_secret" in listed
    assert "Group 2: client" in listed
    assert re.search(
        r"^client \(required by group 2\) .*current value: \(redacted\)", listed, re.MULTILINE
    )


def test_a_secret_inside_the_client_block_is_never_shown_when_invoked(
    meltano_installed: Meltano,
) -> None:
    shown = output(
        meltano_installed,
        "--log-level=debug",
        "invoke",
        "tap-analytics",
        "--discover",
        extra={"TAP_ANALYTICS_CLIENT": json.dumps(CLIENT_BLOCK)},
    )
    assert '"tap_stream_id":"customers"' in shown
    assert SECRET not in shown
    assert SECRET[:10] not in shown


def test_meltano_writes_the_generated_extractor_back_unchanged(tmp_path: Path) -> None:
    copies = ("meltano.yml", "tap-analytics.yml", "README.md")
    for name in copies:
        shutil.copy(ROOT / name, tmp_path / name)
    shutil.copytree(ROOT / "plugins", tmp_path / "plugins")
    subprocess.run(
        [str(MELTANO), "select", "tap-analytics", "--exclude", "customers", "email"],
        cwd=tmp_path,
        env=base_env(tmp_path),
        capture_output=True,
        check=True,
    )
    assert "'!customers.email'" in (tmp_path / "meltano.yml").read_text()
    check = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "settings_copies.py"), "--check", "--root", "."],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert check.returncode == 0, check.stdout
