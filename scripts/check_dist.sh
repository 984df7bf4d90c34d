#!/usr/bin/env bash
# make dist: build the sdist and the wheel (the wheel from the sdist), check their metadata, then
# install the wheel alone in a fresh virtualenv and run `tap-analytics --about` and a sync
# against `tap-analytics-sandbox` from it. Usage: check_dist.sh PYTHON (one with build and twine).
set -euo pipefail
cd "$(dirname "$0")/.."
tools_python=$1
streams="customers sessions events campaigns"
root=$(pwd)

rm -rf dist
"$tools_python" -m build --outdir dist .
"$tools_python" -m twine check --strict dist/*

work=$(mktemp -d)
sandbox_pid=""
cleanup() {
    if [ -n "$sandbox_pid" ]; then kill "$sandbox_pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

"$tools_python" -m venv "$work/venv"
"$work/venv/bin/python" -m pip install --quiet dist/*.whl
cd "$work"  # nothing of the checkout is importable from here

echo "== tap-analytics --about, from the installed wheel"
venv/bin/tap-analytics --about

# Returns once the sandbox listens on a free port, or exits 1 with the reason it cannot.
venv/bin/tap-analytics-sandbox --background --records 50 --port-file sandbox.url \
    --pid-file sandbox.pid --log sandbox.log
sandbox_pid=$(cat sandbox.pid)
printf '{"base_url": "%s", "client_id": "sandbox-client", "client_secret": "sandbox-secret"}\n' \
    "$(cat sandbox.url)" > config.json

echo "== a sync against tap-analytics-sandbox, from the installed wheel"
venv/bin/tap-analytics --config config.json > out.jsonl 2> sync.log
venv/bin/python - out.jsonl $streams <<'PYTHON'
import collections, json, sys
messages = [json.loads(line) for line in open(sys.argv[1])]
records = collections.Counter(m["stream"] for m in messages if m["type"] == "RECORD")
for stream in sys.argv[2:]:
    print(f"{stream}: {records[stream]} records")
assert all(records[stream] == 50 for stream in sys.argv[2:]), "expected 50 records a stream"
assert any(m["type"] == "STATE" for m in messages), "no STATE message"
PYTHON
echo "== dist/ is good:"
ls -1 "$root/dist"
