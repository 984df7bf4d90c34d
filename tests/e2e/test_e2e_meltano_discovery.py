"""Discovery through Meltano with no settings: the catalog, and no warning about settings."""

from __future__ import annotations

from pathlib import Path

import pytest
from e2ekit import STREAMS, Meltano

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize(
    "command",
    [("select", "tap-analytics", "--list", "--all"), ("invoke", "tap-analytics", "--discover")],
    ids=["select --list", "invoke --discover"],
)
def test_discovery_through_meltano_warns_about_no_setting(
    meltano_installed: Meltano, command: tuple[str, ...]
) -> None:
    stdout = meltano_installed(*command)
    stderr = Path(meltano_installed.runs[-1]).read_text().replace(stdout, "")
    assert "[warning" not in stderr, stderr
    assert "is required" not in stderr, stderr
    for stream in STREAMS:
        assert f'"{stream}"' in stdout or f"{stream}." in stdout
