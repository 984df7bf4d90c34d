"""The verbatim fast path writes what the SDK's path writes, message for message."""

from __future__ import annotations

import io
import json
import typing as t
from datetime import UTC, datetime

import pytest
from singer_sdk.singerlib import RecordMessage

from tap_analytics.output import LockedWriter
from tap_analytics.sync import AnalyticsStream
from tapkit import Run, config_for, run_tap

if t.TYPE_CHECKING:
    from tap_analytics.sandbox import SandboxServer

# A map that changes nothing but is not the SDK's default map: records take the SDK's path.
NO_OP_MAP: dict[str, t.Any] = {"stream_maps": {"*": {}}}
# A replaced resource besides the four built-ins, so that RECORDs carry a version.
SNAPSHOT = {
    "name": "snapshot",
    "endpoint": {"path": "/v1/campaigns"},
    "write_disposition": "replace",
    "schema": "campaigns.json",
}
# Each stream, and the sandbox resource it reads.
RESOURCES = {
    "customers": "customers",
    "sessions": "sessions",
    "events": "events",
    "campaigns": "campaigns",
    "snapshot": "campaigns",
}


class Sync(t.NamedTuple):
    """One run, with when it ran and how many records took the SDK's message path."""

    run: Run
    started: datetime
    ended: datetime
    sdk_path_records: int


def sync(sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch, **settings: t.Any) -> Sync:
    """Sync every stream, counting the records handed to the SDK's message generator."""
    generated: list[str] = []
    original = AnalyticsStream._generate_record_messages

    def counting(self: AnalyticsStream, record: dict[str, t.Any]) -> t.Any:
        generated.append(self.name)
        return original(self, record)

    with monkeypatch.context() as patch:
        patch.setattr(AnalyticsStream, "_generate_record_messages", counting)
        started = datetime.now(UTC)
        run = run_tap(config_for(sandbox.base_url, resources=[SNAPSHOT], **settings))
        ended = datetime.now(UTC)
    return Sync(run, started, ended, len(generated))


def without(message: dict[str, t.Any], *keys: str) -> dict[str, t.Any]:
    """A message without the keys that differ between two runs by design."""
    return {key: value for key, value in message.items() if key not in keys}


def as_the_sdk_path_writes(instant: str) -> str:
    """The time_extracted the SDK's path writes for the same instant."""
    message = RecordMessage("any", {}, time_extracted=datetime.fromisoformat(instant))
    return str(json.loads(LockedWriter(io.BytesIO()).format_message(message))["time_extracted"])


@pytest.fixture
def both_paths(sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch) -> tuple[Sync, Sync]:
    """The same sandbox data synced through the fast path, then through the SDK's path."""
    return sync(sandbox, monkeypatch), sync(sandbox, monkeypatch, **NO_OP_MAP)


def test_each_run_took_the_path_it_was_meant_to(both_paths: tuple[Sync, Sync]) -> None:
    fast, sdk = both_paths
    assert fast.sdk_path_records == 0
    assert sdk.sdk_path_records == sum(len(records) for records in sdk.run.records.values())


def test_both_paths_write_the_same_records(
    sandbox: SandboxServer, both_paths: tuple[Sync, Sync]
) -> None:
    fast, sdk = both_paths
    for stream, resource in RESOURCES.items():
        assert fast.run.ids(stream) == [record["id"] for record in sandbox.records(resource)]
        fast_messages = [m for m in fast.run.messages if m.get("stream") == stream]
        sdk_messages = [m for m in sdk.run.messages if m.get("stream") == stream]
        assert [without(m, "time_extracted", "version") for m in fast_messages] == [
            without(m, "time_extracted", "version") for m in sdk_messages
        ]
    assert fast.run.last_state == sdk.run.last_state


def test_both_paths_write_the_version_of_their_run(both_paths: tuple[Sync, Sync]) -> None:
    for path in both_paths:
        messages = [m for m in path.run.messages if m.get("stream") == "snapshot"]
        versions = {m["version"] for m in messages if m["type"] == "ACTIVATE_VERSION"}
        assert len(versions) == 1
        assert {m.get("version") for m in messages if m["type"] == "RECORD"} == versions


def test_both_paths_write_time_extracted_in_one_format(both_paths: tuple[Sync, Sync]) -> None:
    for path in both_paths:
        for message in path.run.messages:
            if message["type"] != "RECORD":
                continue
            written = message["time_extracted"]
            assert written == as_the_sdk_path_writes(written)
            assert written.endswith("Z")
            assert path.started <= datetime.fromisoformat(written) <= path.ended
