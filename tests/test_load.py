"""Load: 200,000 records per stream through a 429 every 50 requests and a 5xx every 70."""

from __future__ import annotations

import collections
import json
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from tapkit import TAP, config_for

PER_STREAM = 200_000
STREAMS = ("customers", "sessions", "events", "campaigns")


@pytest.mark.slow
@pytest.mark.full  # 800,000 records: make test-full
def test_every_record_arrives_under_steady_faults(sandbox_factory):
    sandbox = sandbox_factory(counts=dict.fromkeys(STREAMS, PER_STREAM))
    sandbox.warm()  # generate the data before the clock of any request starts
    sandbox.add_fault({"kind": "status", "status": 429, "every": 50, "times": -1, "retry_after": 0})
    sandbox.add_fault({"kind": "status", "status": 503, "every": 70, "times": -1})
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp, "config.json")
        config.write_text(
            json.dumps(config_for(sandbox.base_url, backoff_factor=0.01, request_timeout=30))
        )
        out = Path(tmp, "out")
        started = time.monotonic()
        with out.open("wb") as sink:
            result = subprocess.run(
                [TAP, "--config", str(config)],
                stdout=sink,
                stderr=subprocess.PIPE,
                timeout=900,
                check=False,
            )
        elapsed = time.monotonic() - started
        assert result.returncode == 0, result.stderr[-2000:]
        seen: dict[str, set[str]] = collections.defaultdict(set)
        records: collections.Counter[str] = collections.Counter()
        with out.open("rb") as lines:
            for line in lines:
                if line.startswith(b'{"type":"RECORD"'):
                    message = json.loads(line)
                    seen[message["stream"]].add(message["record"]["id"])
                    records[message["stream"]] += 1
    for stream in STREAMS:
        assert len(seen[stream]) == PER_STREAM, stream
        assert records[stream] == PER_STREAM, f"{stream}: duplicates"
    statuses = collections.Counter(r["status"] for r in sandbox.request_log())
    assert statuses[429] > 100
    assert statuses[503] > 100
    print(
        f"faulted full sync: {sum(records.values())} records in {elapsed:.1f} s, {dict(statuses)}"
    )
