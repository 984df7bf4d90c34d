"""Hostile input and a careless server: revoked tokens, bad state and config, signals, hangs."""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import time
import typing as t
from pathlib import Path

import pytest
import requests
from singer_sdk.exceptions import ConfigValidationError
from singer_sdk.helpers.capabilities import BATCH_CONFIG, FLATTENING_CONFIG, STREAM_MAPS_CONFIG

from tap_analytics import settings
from tap_analytics.retry import RetryPolicy
from tap_analytics.tap import TapAnalytics
from tapkit import CLIENT_ID, CLIENT_SECRET, TAP, Run, config_for, parse_lines, run_cli, run_tap

STREAMS = ("customers", "sessions", "events", "campaigns")
TOKEN = "/oauth/v1/token"


def all_ids(sandbox, stream: str) -> list[str]:
    return [r["id"] for r in sandbox.records(stream)]


def data_requests(sandbox) -> list[dict[str, t.Any]]:
    return [r for r in sandbox.request_log() if r["path"].startswith("/v1/")]


def token_requests(sandbox) -> list[dict[str, t.Any]]:
    return [r for r in sandbox.request_log() if r["path"] == TOKEN]


def last_line(run: Run) -> str:
    return run.stderr.strip().splitlines()[-1]


# 1. Tokens revoked again while their request is repeated.


def test_completes_with_the_token_revoked_on_every_5th_request(sandbox):
    # A request is rejected at most once per revocation (its next token is issued after the
    # revocation that rejected it), so 10 revocations can never reach the tap's limits:
    # MAX_REJECTIONS (10) for one request and max_retries (10) tokens unused in a row. More
    # revocations, while several requests are in flight, trip them by chance.
    revocations = 10
    sandbox.add_fault({"kind": "revoke", "every": 5, "times": revocations})
    # Parallel streams, so that one revocation rejects several requests at once: they run
    # side by side while they wait on the API.
    sandbox.set_latency(20)
    config = config_for(sandbox.base_url, page_size=10, max_retries=revocations)
    run = run_tap(config | {"max_parallel_streams": 4})
    for stream in STREAMS:  # every record once, in any order (slices read side by side)
        assert sorted(run.ids(stream)) == sorted(all_ids(sandbox, stream))
    assert len(data_requests(sandbox)) // 5 >= revocations, "every revocation fired"
    rejected = [r for r in data_requests(sandbox) if r["status"] == 401]
    assert len(rejected) >= revocations
    # One refresh serves every stream that saw the same token rejected.
    assert len(token_requests(sandbox)) <= 1 + revocations


def test_completes_while_another_client_fetches_a_token_every_300_ms(sandbox_factory):
    sandbox = sandbox_factory(latency_ms=10, one_token_per_client=True)
    form = {"grant_type": "client_credentials", "client_id": CLIENT_ID}
    form["client_secret"] = CLIENT_SECRET
    done = threading.Event()

    def other_job() -> None:
        while not done.wait(0.3):
            requests.post(sandbox.base_url + TOKEN, data=form, timeout=10).raise_for_status()

    thief = threading.Thread(target=other_job)
    thief.start()
    try:
        run = run_tap(config_for(sandbox.base_url, page_size=5))
    finally:
        done.set()
        thief.join()
    for stream in STREAMS:
        assert run.ids(stream) == all_ids(sandbox, stream)
    assert any(r["status"] == 401 for r in data_requests(sandbox)), "tokens were revoked"


def test_tokens_revoked_before_any_use_end_the_run_naming_the_likely_cause(sandbox):
    # Every data request revokes every token first: no token ever serves a request.
    sandbox.add_fault({"kind": "revoke", "times": -1})
    sandbox.set_latency(50)  # streams that wait on the API run side by side
    run = run_cli(config_for(sandbox.base_url, max_retries=2) | {"max_parallel_streams": 4})
    assert run.returncode == 1
    line = last_line(run)
    assert "revoked 3 times in a row" in line
    assert "another job uses the same client credentials" in line
    assert "client_secret" not in line
    assert "client_id" not in line
    rejected = [r for r in data_requests(sandbox) if r["status"] == 401]
    assert len(token_requests(sandbox)) < len(rejected)


def test_a_request_rejected_whatever_the_token_ends_only_its_stream(sandbox_factory):
    # A server that answers invalid_token for one resource while accepting the token for the
    # others: the stream gives up after a bounded number of new tokens.
    sandbox = sandbox_factory(
        counts={"customers": 4000, "sessions": 5, "events": 5, "campaigns": 5}
    )
    sandbox.add_fault({"kind": "status", "status": 401, "path": "/v1/events", "times": -1})
    config = config_for(sandbox.base_url, page_size=2, backoff_factor=0.005)
    run = run_cli(config | {"max_parallel_streams": 4})  # others use the tokens meanwhile
    assert run.returncode == 1
    line = last_line(run)
    assert "rejected the access token 11 times in a row for this request" in line
    assert "1 stream(s) incomplete (events)" in line
    for stream in ("customers", "sessions", "campaigns"):
        assert run.ids(stream) == all_ids(sandbox, stream)


# 3. The tap's own STATE line is a state; other objects without bookmarks are refused.


def test_the_taps_own_state_message_resumes_where_it_ended(sandbox, tmp_path):
    config = config_for(sandbox.base_url)
    first = run_cli(config)
    last_state_line = next(m for m in reversed(first.messages) if m["type"] == "STATE")
    rerun = run_cli(config, state=last_state_line)
    assert rerun.returncode == 0
    assert "is a Singer STATE message" in rerun.stderr
    for stream in STREAMS:
        # Nothing new, and those at the bookmark's instant were delivered: none again.
        assert rerun.ids(stream) == []
        assert rerun.bookmark(stream) == first.bookmark(stream)


@pytest.mark.parametrize(
    ("state", "note"),
    [({}, "holds no bookmarks"), ({"type": "STATE", "value": {}}, "holds no bookmarks")],
)
def test_an_empty_state_is_no_state_and_says_so(sandbox, state, note):
    run = run_cli(config_for(sandbox.base_url), state=state)
    assert run.returncode == 0
    assert note in run.stderr
    assert run.ids("customers") == all_ids(sandbox, "customers")


@pytest.mark.parametrize(
    "state",
    [{"foo": 1}, {"bookmarks": []}, {"type": "STATE", "value": {"foo": 1}}],
    ids=["no-bookmarks", "bookmarks-not-object", "envelope-without-bookmarks"],
)
def test_an_object_without_bookmarks_is_refused_before_any_request(sandbox, state):
    run = run_cli(config_for(sandbox.base_url), state=state)
    assert run.returncode == 1
    assert "'bookmarks'" in last_line(run)
    assert "Traceback" not in run.stderr
    assert run.messages == []
    assert sandbox.request_log() == []


# 4. One line, not a traceback, for broken files.


STATE_FILES = {
    "empty state file": "",
    "bookmark entry that is a string": '{"bookmarks": {"customers": "2024-01-01T00:00:00Z"}}',
}
CONFIG_FILES = {
    "empty config": ("", "is empty"),
    "null config": ("null", "holds a JSON null"),
    "list config": ("[1]", "holds a JSON array"),
    "config not JSON": ("{client_id: x", "is not valid JSON"),
}


@pytest.mark.parametrize("name", STATE_FILES)
def test_a_broken_state_file_is_one_line(sandbox, tmp_path, name):
    (tmp_path / "config.json").write_text(json.dumps(config_for(sandbox.base_url)))
    (tmp_path / "state.json").write_text(STATE_FILES[name])
    argv = [TAP, "--config", str(tmp_path / "config.json"), "--state", str(tmp_path / "state.json")]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    assert "Traceback" not in result.stderr
    if STATE_FILES[name]:
        assert result.returncode == 1
        assert "bookmark of stream 'customers'" in result.stderr.strip().splitlines()[-1]
    else:  # an empty file is no state, and the log says so
        assert result.returncode == 0
        assert "state.json is empty" in result.stderr


@pytest.mark.parametrize("name", [*CONFIG_FILES, "missing config"])
def test_a_broken_config_file_is_one_line_naming_it(tmp_path, name):
    path = tmp_path / "config.json"
    content, problem = CONFIG_FILES.get(name, (None, "was not found"))
    if content is not None:
        path.write_text(content)
    result = subprocess.run(
        [TAP, "--config", str(path)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert str(path) in last
    assert problem in last


# 5. The SDK's own settings are validated too.


@pytest.mark.parametrize(
    "change", [{"stream_maps": "nonsense"}, {"flattening_max_depth": "deep"}], ids=str
)
def test_the_sdk_settings_are_validated_by_name_like_ours(sandbox, change):
    run = run_cli(config_for(sandbox.base_url, page_size=0, **change))
    assert run.returncode == 1
    (name,) = change
    line = last_line(run)
    assert f"Setting '{name}' is invalid: {change[name]!r} is not of type" in line
    assert "Setting 'page_size' is invalid" in line  # ours, in the same line
    assert "Config validation failed" not in run.stderr  # no second verdict
    assert "Traceback" not in run.stderr
    assert sandbox.request_log() == []


def test_a_setting_given_as_null_is_not_set(sandbox):
    run = run_cli(config_for(sandbox.base_url, stream_maps=None, start_date=None))
    assert run.returncode == 0
    assert run.ids("customers") == all_ids(sandbox, "customers")


# 6. Misspelled settings get a warning with the closest known name.


def test_unknown_settings_are_named_with_the_closest_known_one(sandbox):
    config = config_for(sandbox.base_url)
    config |= {"page-size": 5, "max_retry": 9, "zzz": 1, "flattening_enabled": False}
    run = run_cli(config)
    assert run.returncode == 0
    assert "Setting 'page-size' is unknown (did you mean 'page_size'?)" in run.stderr
    assert "Setting 'max_retry' is unknown (did you mean 'max_retries'?)" in run.stderr
    assert "Setting 'zzz' is unknown: it is ignored" in run.stderr
    assert "flattening_enabled' is unknown" not in run.stderr  # the SDK's own setting


SAMPLE_VALUES = {"object": {}, "boolean": False, "integer": 1, "string": "_"}


def test_no_setting_of_the_sdk_is_called_unknown(caplog):
    # The SDK's built-in settings, read from its capability schemas, are no typos.
    builtin = {**STREAM_MAPS_CONFIG["properties"], **FLATTENING_CONFIG["properties"]}
    builtin |= BATCH_CONFIG["properties"]
    values = {name: SAMPLE_VALUES[schema["type"][0]] for name, schema in builtin.items()}
    config = config_for("https://api.test") | values | {"page_sise": 5}
    TapAnalytics(config=config, validate_config=False)  # a sync refuses batch_config
    assert "Setting 'page_sise' is unknown (did you mean 'page_size'?)" in caplog.text
    assert caplog.text.count("is unknown") == 1
    assert "Setting 'batch_config' is refused" in caplog.text


# 9. Messages that tell the truth.


def test_when_every_stream_fails_none_is_said_to_be_delivered(sandbox):
    sandbox.add_fault({"kind": "status", "status": 503, "times": -1})
    run = run_cli(config_for(sandbox.base_url, max_retries=1))
    assert run.returncode == 1
    line = last_line(run)
    assert "4 stream(s) incomplete" in line
    assert "No stream was delivered in full" in line
    assert "delivered;" not in line.replace("No stream was delivered in full;", "")
    assert ".." not in line


def test_the_failure_summary_names_the_delivered_streams(sandbox):
    sandbox.add_fault({"kind": "status", "status": 404, "path": "/v1/sessions", "times": -1})
    run = run_cli(config_for(sandbox.base_url))
    line = last_line(run)
    assert "Delivered in full: campaigns, customers, events;" in line
    assert ".." not in line


def test_a_token_endpoint_giving_up_has_no_doubled_period(sandbox):
    sandbox.add_fault({"kind": "status", "status": 503, "path": TOKEN, "times": -1})
    run = run_cli(config_for(sandbox.base_url, max_retries=1))
    line = last_line(run)
    assert "rerun later" in line
    assert ".." not in line


def test_a_token_endpoint_answering_html_is_named_with_a_hint(sandbox):
    sandbox.add_fault({"kind": "html", "path": TOKEN, "times": -1})
    run = run_cli(config_for(sandbox.base_url, max_retries=1))
    assert run.returncode == 1
    line = last_line(run)
    assert sandbox.base_url + TOKEN in line
    assert "not JSON" in line
    assert "check token_url" in line
    assert "Expecting value" not in line


def test_a_test_run_logs_no_error_for_its_planned_stop(sandbox):
    run = run_cli(config_for(sandbox.base_url), "--test")
    assert run.returncode == 0
    assert "unhandled error" not in run.stderr
    assert "ERROR" not in run.stderr
    assert {stream: len(run.ids(stream)) for stream in STREAMS} == dict.fromkeys(STREAMS, 1)


# 10. A server that accepts connections and never answers.


def worst_wait(timeout: float, retry: RetryPolicy) -> float:
    """Seconds a request can wait on a server that never answers: every attempt, every pause."""
    pauses = retry.wait_generator()
    next(pauses)
    waits = [next(pauses) * 1.1 for _ in range(retry.max_retries)]  # jitter adds up to 10 %
    return retry.max_tries * timeout + sum(waits)


def test_with_defaults_a_server_that_never_answers_fails_within_5_minutes():
    retry = RetryPolicy(settings.DEFAULT_MAX_RETRIES, settings.DEFAULT_BACKOFF_FACTOR)
    per_request = worst_wait(settings.DEFAULT_REQUEST_TIMEOUT, retry)
    # A data request can meet a token renewal that hangs too (a refused token ends the run).
    assert 2 * per_request <= 5 * 60


def test_a_hanging_server_fails_the_stream_after_its_attempts(sandbox):
    sandbox.add_fault({"kind": "hang", "path": "/v1/campaigns", "times": -1})
    run = run_cli(config_for(sandbox.base_url, request_timeout=0.5, max_retries=2))
    assert run.returncode == 1
    line = last_line(run)
    assert "1 stream(s) incomplete (campaigns)" in line
    assert "no answer within request_timeout (0.5 s) in 3 attempt(s)" in line
    hung = [r for r in data_requests(sandbox) if r["path"] == "/v1/campaigns"]
    assert len(hung) == 3
    assert run.ids("customers") == all_ids(sandbox, "customers")


def start_tap(config: dict[str, t.Any], tmp_path) -> subprocess.Popen[bytes]:
    (tmp_path / "config.json").write_text(json.dumps(config))
    with (tmp_path / "out").open("wb") as out, (tmp_path / "err").open("wb") as err:
        return subprocess.Popen(
            [TAP, "--config", str(tmp_path / "config.json")], stdout=out, stderr=err
        )


def test_sigterm_is_prompt_while_a_request_hangs(sandbox, tmp_path):
    sandbox.add_fault({"kind": "hang", "path": "/v1/events", "times": -1})
    config = config_for(sandbox.base_url)
    del config["request_timeout"]  # the default
    process = start_tap(config, tmp_path)
    deadline = time.monotonic() + 30
    while not any(r["path"] == "/v1/events" for r in sandbox.request_log()):
        assert time.monotonic() < deadline, "the hanging request never came"
        time.sleep(0.02)
    process.send_signal(signal.SIGTERM)
    # With the default request_timeout the hung request alone would hold the tap 30 s.
    assert process.wait(timeout=15) == 128 + signal.SIGTERM
    assert "interrupted by signal 15" in (tmp_path / "err").read_text().splitlines()[-1]


def blocked_writing_to_a_pipe(pid: int) -> bool:
    """Tell whether a thread of a process waits in the kernel for room in a pipe (Linux)."""
    return any(
        wchan.read_text().endswith("pipe_write")
        for wchan in Path(f"/proc/{pid}/task").glob("*/wchan")
    )


@pytest.mark.skipif(not Path("/proc/self/wchan").exists(), reason="reads /proc (Linux)")
def test_sigterm_ends_the_run_when_nobody_reads_stdout(sandbox, tmp_path):
    """A target that stopped reading: exit 143 without the last STATE, and say so on stderr."""
    (tmp_path / "config.json").write_text(json.dumps(config_for(sandbox.base_url)))
    argv = [TAP, "--config", str(tmp_path / "config.json")]
    with (tmp_path / "err").open("wb") as err:
        process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=err)
    assert process.stdout is not None
    try:
        deadline = time.monotonic() + 60
        while not blocked_writing_to_a_pipe(process.pid):  # stdout is full
            assert process.poll() is None, "the tap ended before stdout was full"
            assert time.monotonic() < deadline, "stdout never filled"
            time.sleep(0.02)
        process.send_signal(signal.SIGTERM)
        # A hang detector, not a timing claim: without the fix the tap never ends.
        assert process.wait(timeout=60) == 128 + signal.SIGTERM
    finally:
        process.kill()
        process.stdout.close()
        process.wait()
    err_text = (tmp_path / "err").read_text()
    assert "Traceback" not in err_text
    last = err_text.strip().splitlines()[-1]
    assert "interrupted by signal 15; the last STATE could not be written" in last
    assert "Rerun with the last STATE the target received" in last


# Signals: a second one while stopping does not interrupt the final STATE.


@pytest.mark.parametrize(
    ("first", "second"), [(signal.SIGTERM, signal.SIGINT), (signal.SIGINT, signal.SIGTERM)]
)
def test_a_second_signal_while_stopping_keeps_the_final_state(
    sandbox_factory, tmp_path, first, second
):
    counts = dict.fromkeys(STREAMS, 3000)
    sandbox = sandbox_factory(counts=counts, latency_ms=5)
    process = start_tap(config_for(sandbox.base_url, page_size=50), tmp_path)
    deadline = time.monotonic() + 30
    while (tmp_path / "out").read_bytes().count(b'"RECORD"') < 1500:
        assert time.monotonic() < deadline, "the tap wrote too few records"
        time.sleep(0.02)
    process.send_signal(first)
    time.sleep(0.05)  # a terminal and Meltano each forward one, a moment apart
    process.send_signal(second)
    assert process.wait(timeout=30) == 128 + first
    err = (tmp_path / "err").read_text()
    assert "Traceback" not in err
    assert f"interrupted by signal {first.value}" in err.strip().splitlines()[-1]
    run = Run(parse_lines((tmp_path / "out").read_bytes()))
    assert run.messages[-1]["type"] == "STATE"
    rerun = run_tap(config_for(sandbox.base_url, page_size=50), state=run.last_state)
    for stream in STREAMS:
        assert set(run.ids(stream)) | set(rerun.ids(stream)) == set(all_ids(sandbox, stream))


# Plain HTTP to another host would send the secret in clear.


@pytest.mark.parametrize(
    "change",
    [
        {"base_url": "http://api.example.com"},
        {"base_url": "https://api.example.com", "token_url": "http://auth.example.com/token"},
    ],
)
def test_plain_http_to_another_host_is_refused_by_name(change):
    config = config_for("https://api.example.com") | change
    with pytest.raises(ConfigValidationError, match="allow_insecure_http") as caught:
        TapAnalytics(config=config, validate_config=True)
    name = "token_url" if "token_url" in change else "base_url"
    assert f"Setting '{name}' is refused" in str(caught.value)
    assert TapAnalytics(config=config | {"allow_insecure_http": True}, validate_config=True)


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:1", "http://127.1.2.3", "http://localhost:8000", "http://[::1]:80"]
)
def test_plain_http_to_this_machine_is_allowed(url):
    assert TapAnalytics(config=config_for(url), validate_config=True).config["base_url"] == url
