"""The --config, --state and --catalog files: capped in size, and refused in one line."""

from __future__ import annotations

import json
import typing as t

import pytest

from tap_analytics.inputs import MAX_FILE_MB
from tapkit import CLIENT_SECRET, Run, catalog_selecting, config_for, run_cli

if t.TYPE_CHECKING:
    from pathlib import Path

    from tap_analytics.sandbox import SandboxServer

CATALOG_FILES = {
    "not JSON": ("{streams", "is not valid JSON"),
    "empty": ("", "is empty"),
    "a list": ("[1]", "it is a JSON array, not an object with a 'streams' list"),
    "streams a number": ('{"streams": 5}', "its 'streams' is a JSON number, not a list"),
    "no streams": ("{}", "it has no 'streams' list"),
    "a stream a number": ('{"streams": [1]}', "streams[0] is a JSON number, not a stream object"),
    "no stream id": ('{"streams": [{"schema": {}}]}', "streams[0] has no 'tap_stream_id'"),
    "schema a list": (
        '{"streams": [{"tap_stream_id": "customers", "schema": []}]}',
        "the 'schema' of stream 'customers' is a JSON array, not an object",
    ),
    "metadata item a number": (
        '{"streams": [{"tap_stream_id": "customers", "metadata": [1]}]}',
        "a 'metadata' item of stream 'customers' is not",
    ),
    "breadcrumb of numbers": (
        json.dumps(
            {"streams": [{"tap_stream_id": "customers", "metadata": [{"breadcrumb": [[1]]}]}]}
        ),
        "a 'metadata' item of stream 'customers' is not",
    ),
}


def assert_refused_before_any_request(run: Run, sandbox: SandboxServer, *words: str) -> str:
    """Exit 1, no traceback, nothing on stdout or requested; the last line has the words."""
    assert run.returncode == 1, run.stderr
    assert "Traceback" not in run.stderr
    assert run.messages == []
    assert sandbox.request_log() == [], "nothing may be requested with a bad input file"
    assert CLIENT_SECRET not in run.stderr
    last = run.stderr.strip().splitlines()[-1]
    for word in words:
        assert word in last
    return str(last)


@pytest.mark.parametrize("name", CATALOG_FILES)
def test_a_broken_catalog_file_is_one_line_before_any_request(
    sandbox: SandboxServer, tmp_path: Path, name: str
) -> None:
    content, problem = CATALOG_FILES[name]
    path = tmp_path / "catalog.json"
    path.write_text(content)
    run = run_cli(config_for(sandbox.base_url), "--catalog", str(path))
    last = assert_refused_before_any_request(run, sandbox, "Invalid catalog", str(path), problem)
    assert "--discover" in last


def test_a_checked_catalog_file_still_selects_streams(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    config = config_for(sandbox.base_url)
    path = tmp_path / "catalog.json"
    path.write_text(json.dumps(catalog_selecting(config, {"campaigns"})))
    run = run_cli(config, "--catalog", str(path))
    assert run.returncode == 0, run.stderr
    assert set(run.records) == {"campaigns"}
    assert len(run.records["campaigns"]) == len(sandbox.records("campaigns"))


@pytest.mark.parametrize("option", ["--state", "--catalog", "--config"])
def test_a_file_that_never_ends_is_refused_at_the_size_cap(
    sandbox: SandboxServer, tmp_path: Path, option: str
) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps(config_for(sandbox.base_url)))
    argv = {
        "--config": [],
        "--state": ["--config", str(config)],
        "--catalog": ["--config", str(config)],
    }
    run = run_cli(None, *argv[option], option, "/dev/zero")
    assert_refused_before_any_request(run, sandbox, "/dev/zero", f"larger than {MAX_FILE_MB} MiB")


def test_the_size_cap_counts_bytes_not_characters(sandbox: SandboxServer, tmp_path: Path) -> None:
    # Half the cap in two-byte characters, and one more: fewer characters than the cap's bytes.
    path = tmp_path / "state.json"
    path.write_bytes(b'{"bookmarks": {}, "note": "' + "é".encode() * (MAX_FILE_MB * 2**19) + b'"}')
    run = run_cli(config_for(sandbox.base_url), "--state", str(path))
    assert_refused_before_any_request(run, sandbox, str(path), f"larger than {MAX_FILE_MB} MiB")


def test_a_state_file_that_is_not_utf8_is_one_line(sandbox: SandboxServer, tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    path.write_bytes(b'{"bookmarks": {"customers": {"replication_key_value": "\xff"}}}')
    run = run_cli(config_for(sandbox.base_url), "--state", str(path))
    assert_refused_before_any_request(run, sandbox, "Invalid state", str(path), "not UTF-8")
