"""A catalog that chooses FULL_TABLE: a full read whatever the state says, between versions."""

from __future__ import annotations

import json
import typing as t

import pytest

from tapkit import Run, catalog_selecting, config_for, run_cli

if t.TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from tap_analytics.sandbox import SandboxServer

COUNT = 1000


def full_table_catalog(config: dict[str, t.Any], how: str) -> dict[str, t.Any]:
    """The discovered catalog, customers alone selected and chosen FULL_TABLE `how`."""
    catalog = catalog_selecting(config, {"customers"})
    (entry,) = [e for e in catalog["streams"] if e["tap_stream_id"] == "customers"]
    if how == "replication_method":  # the entry's own field
        entry["replication_method"] = "FULL_TABLE"
    else:  # as Meltano's `metadata` extra writes it
        (stream,) = [m for m in entry["metadata"] if m["breadcrumb"] == []]
        stream["metadata"][how] = "FULL_TABLE"
    return catalog


def run_from_bookmark(
    config: dict[str, t.Any], catalog: dict[str, t.Any], bookmark: str, tmp_path: Path
) -> Run:
    """A run of `catalog` (as a file) from a state whose customers bookmark is `bookmark`."""
    path = tmp_path / "catalog.json"
    path.write_text(json.dumps(catalog))
    entry = {"replication_key": "updated_at", "replication_key_value": bookmark}
    run = run_cli(config, "--catalog", str(path), state={"bookmarks": {"customers": entry}})
    assert run.returncode == 0, run.stderr
    return run


@pytest.mark.parametrize(
    "how", ["replication_method", "replication-method", "forced-replication-method"]
)
def test_full_table_in_the_catalog_reads_every_record_between_versions(
    sandbox_factory: Callable[..., SandboxServer], tmp_path: Path, how: str
) -> None:
    sandbox = sandbox_factory(counts={"customers": COUNT})
    records = sandbox.records("customers")
    bookmark, start = records[780]["updated_at"], records[500]["updated_at"]
    config = config_for(sandbox.base_url, start_date=start)
    run = run_from_bookmark(config, full_table_catalog(config, how), bookmark, tmp_path)
    # Every record, from the start: neither the bookmark nor start_date filters a full read.
    assert run.ids("customers") == [r["id"] for r in records]
    sent = [r["query"] for r in sandbox.request_log() if r["path"] == "/v1/customers"]
    assert sent
    assert all("updated_since" not in query for query in sent)
    assert "FULL_TABLE in the catalog" in run.stderr
    # The records between two ACTIVATE_VERSIONs of one version, which they carry.
    kinds = [m["type"] for m in run.messages if m["type"] in {"RECORD", "ACTIVATE_VERSION"}]
    assert kinds == ["ACTIVATE_VERSION", *["RECORD"] * COUNT, "ACTIVATE_VERSION"]
    versions = {m["version"] for m in run.messages if m["type"] in {"RECORD", "ACTIVATE_VERSION"}}
    assert len(versions) == 1
    # The bookmark where the full read left it: the last record written.
    assert (
        run.last_state["bookmarks"]["customers"]["replication_key_value"]
        == records[-1]["updated_at"]
    )


def test_without_full_table_the_same_state_resumes_from_its_bookmark(
    sandbox_factory: Callable[..., SandboxServer], tmp_path: Path
) -> None:
    """The control: the same catalog with no choice made reads from the bookmark."""
    sandbox = sandbox_factory(counts={"customers": COUNT})
    records = sandbox.records("customers")
    bookmark = records[780]["updated_at"]
    config = config_for(sandbox.base_url)
    catalog = catalog_selecting(config, {"customers"})
    run = run_from_bookmark(config, catalog, bookmark, tmp_path)
    assert len(run.ids("customers")) < COUNT
    assert "ACTIVATE_VERSION" not in {m["type"] for m in run.messages}
