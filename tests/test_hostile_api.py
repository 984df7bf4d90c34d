"""A hostile or sloppy API over HTTP: paging, redirects, slow and huge bodies, bad headers."""

from __future__ import annotations

import contextlib
import itertools
import json
import socketserver
import threading
import typing as t

import pytest
import requests

from tap_analytics import transport
from tap_analytics.retry import MAX_RETRY_AFTER, RetryPolicy
from tapkit import CLIENT_SECRET, Run, config_for, run_cli, run_tap, seed_config

if t.TYPE_CHECKING:
    from tap_analytics.sandbox import SandboxServer

    Sandboxes = t.Callable[..., SandboxServer]

TOKEN = "/oauth/v1/token"
DEBUG = {"TAP_ANALYTICS_LOG_LEVEL": "DEBUG", "LOGLEVEL": "DEBUG"}
# Upper bounds that only catch a hang (the tap before these fixes took minutes, or forever).
HANG = 60


def ids(sandbox: SandboxServer, stream: str) -> list[str]:
    return [r["id"] for r in sandbox.records(stream)]


def issued_tokens(sandbox: SandboxServer) -> set[str]:
    return {r["token"] for r in sandbox.request_log() if r["token"]}


def failure_line(run: Run, sandbox: SandboxServer) -> str:
    """The verdict: one line, no traceback, no secret."""
    assert run.returncode == 1, run.stderr[-2000:]
    assert "Traceback" not in run.stderr
    assert CLIENT_SECRET not in run.stderr
    for token in issued_tokens(sandbox):
        assert token not in run.stderr
    return run.stderr.strip().splitlines()[-1]


# 1. Only the documented last-page shapes end a list.

PAGING_SHAPES = {
    "next is the cursor itself": ({"next": "{after}"}, "'paging.next' is a JSON string"),
    "after is empty": ({"next": {"after": "", "link": "{link}"}}, "is a JSON string ('')"),
    "paging is a list": ([{"next": {"after": "{after}"}}], "'paging' is a JSON array"),
    "next has only a link": ({"next": {"link": "{link}"}}, "'paging.next.after' is missing"),
}


@pytest.mark.parametrize("shape", PAGING_SHAPES)
def test_a_page_in_another_paging_shape_fails_its_stream_by_name(
    sandbox: SandboxServer, shape: str
) -> None:
    paging, problem = PAGING_SHAPES[shape]
    sandbox.add_fault({"kind": "paging", "path": "/v1/customers", "paging": paging})
    run = run_cli(config_for(sandbox.base_url), env=DEBUG, timeout=HANG)
    line = failure_line(run, sandbox)
    assert "1 stream(s) incomplete (customers)" in line
    assert "a page of GET /v1/customers breaks the paging contract" in line
    assert problem in line
    assert "report it to the API provider" in line
    assert run.ids("customers") == ids(sandbox, "customers")[:100], "the page itself is good"
    for stream in ("sessions", "events", "campaigns"):
        assert run.ids(stream) == ids(sandbox, stream)


# 7. The token request is never redirected.


@pytest.mark.parametrize("status", [307, 308])
def test_a_redirected_token_request_is_not_followed(
    sandbox_factory: Sandboxes, status: int
) -> None:
    api, elsewhere = sandbox_factory(), sandbox_factory()
    location = elsewhere.base_url + TOKEN  # another origin: another port
    redirect = {"kind": "raw", "path": TOKEN, "status": status, "headers": {"Location": location}}
    api.add_fault(redirect | {"times": -1})
    run = run_cli(config_for(api.base_url), env=DEBUG, timeout=HANG)
    assert elsewhere.request_log() == [], "nothing was posted to the other origin"
    line = failure_line(run, api)
    assert f"answered HTTP {status}, a redirect to {elsewhere.base_url}" in line
    assert "never follows a redirect of the token request" in line
    assert "set token_url" in line


# 8. Server-controlled text is quoted redacted, in one line, also by --discover.


def declared_resource_config(sandbox: SandboxServer) -> dict[str, t.Any]:
    """The seed configuration, without retries: each would wait seconds."""
    config = seed_config(sandbox.base_url)
    config["resources"][0]["endpoint"]["error_handler"]["max_retries"] = 0
    return config


def careless_content_type(sandbox: SandboxServer) -> None:
    sandbox.add_fault(
        {
            "kind": "raw",
            "path": "/v1/resource",
            "times": -1,
            "content_type": f"text/html; you-sent={{authorization}}; secret={CLIENT_SECRET}",
            "body": "<html>login</html>",
        }
    )


def test_discovery_of_an_unreadable_resource_quotes_no_secret_in_one_line(
    sandbox: SandboxServer,
) -> None:
    careless_content_type(sandbox)
    config = declared_resource_config(sandbox)
    run = run_cli(config, "--discover", env=DEBUG, timeout=HANG)
    line = failure_line(run, sandbox)
    assert "'resource_name'" in line
    assert "not JSON" in line
    assert "GET /v1/resource" in line
    assert "you-sent=Bearer ***; secret=***" in line
    assert issued_tokens(sandbox), "the token was sent, and so could be echoed"


def test_a_sync_of_an_unreadable_resource_quotes_no_secret_in_one_line(
    sandbox: SandboxServer,
) -> None:
    careless_content_type(sandbox)
    config = declared_resource_config(sandbox)
    config["resources"][0]["schema"] = {"type": "object", "properties": {}}
    run = run_cli(config, env=DEBUG, timeout=HANG)
    line = failure_line(run, sandbox)
    assert "you-sent=Bearer ***; secret=***" in line
    assert "GET /v1/resource" in line


# 10. request_timeout bounds a request from its sending to the last byte of its answer.


TRICKLES = ["trickle", "trickle_head"]  # the body, or the head and the body


@pytest.mark.parametrize("kind", TRICKLES)
def test_an_answer_trickled_byte_by_byte_fails_within_request_timeout(
    sandbox: SandboxServer, kind: str
) -> None:
    # A byte every 0.2 s never trips a timeout between two bytes (the old bound): the page of
    # campaigns would take minutes.
    sandbox.add_fault({"kind": kind, "path": "/v1/campaigns", "delay": 0.2, "times": -1})
    config = config_for(sandbox.base_url, request_timeout=1, max_retries=0)
    run = run_cli(config, env=DEBUG, timeout=HANG)
    line = failure_line(run, sandbox)
    assert "1 stream(s) incomplete (campaigns)" in line
    assert "no answer within request_timeout (1 s) in 1 attempt(s) (GET /v1/campaigns)" in line
    assert "from its sending to the last byte of its answer" in line
    assert run.ids("customers") == ids(sandbox, "customers")


class TricklingProxy(socketserver.ThreadingTCPServer):
    """An HTTP proxy that answers every request with a head trickled a byte at a time."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), TrickleHandler)
        self.stopped = threading.Event()
        self.url = f"http://127.0.0.1:{self.server_address[1]}"


class TrickleHandler(socketserver.BaseRequestHandler):
    """Reads a request's head, then sends an answer's head forever, a byte every 0.2 s."""

    def handle(self) -> None:
        received = b""
        while b"\r\n\r\n" not in received and (chunk := self.request.recv(4096)):
            received += chunk
        server = t.cast("TricklingProxy", self.server)
        with contextlib.suppress(OSError):  # shut by the client
            for byte in itertools.cycle(b"HTTP/1.1 200 OK\r\nX-Slow: "):
                self.request.sendall(bytes([byte]))
                if server.stopped.wait(0.2):
                    return


def test_an_answer_trickled_through_a_proxy_fails_within_request_timeout() -> None:
    # requests makes its own pools for a proxy (HTTP_PROXY), past the adapter's pool manager.
    proxy = TricklingProxy()
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    outcome: list[BaseException] = []
    session = transport.bounded(requests.Session(), 1)
    session.trust_env = False

    def get() -> None:
        try:
            session.get("http://api.invalid/v1/customers", proxies={"http": proxy.url}, timeout=1)
        except requests.RequestException as exc:
            outcome.append(exc)

    asking = threading.Thread(target=get, daemon=True)
    asking.start()
    asking.join(timeout=HANG)
    held = asking.is_alive()
    proxy.stopped.set()
    proxy.shutdown()
    proxy.server_close()
    assert not held, "the trickled head held the request past request_timeout"
    assert isinstance(outcome[0], transport.AnswerTooSlowError)


@pytest.mark.parametrize("kind", TRICKLES)
def test_a_token_endpoint_trickling_its_answer_fails_within_request_timeout(
    sandbox: SandboxServer, kind: str
) -> None:
    sandbox.add_fault({"kind": kind, "path": TOKEN, "delay": 0.5, "times": -1})
    config = config_for(sandbox.base_url, request_timeout=1, max_retries=0)
    run = run_cli(config, env=DEBUG, timeout=HANG)
    line = failure_line(run, sandbox)
    assert f"Token request to {sandbox.base_url}{TOKEN} failed after 0 retries" in line
    assert "(no whole answer within request_timeout)" in line


# 11. Lists that never end.


def test_a_cursor_back_to_the_start_of_the_same_page_fails_the_stream(
    sandbox: SandboxServer,
) -> None:
    sandbox.add_fault({"kind": "rewind", "path": "/v1/customers", "times": -1})
    run = run_cli(config_for(sandbox.base_url), env=DEBUG, timeout=HANG)
    line = failure_line(run, sandbox)
    assert "1 stream(s) incomplete (customers)" in line
    assert "the page repeats records already read (the same id, updated_at)" in line
    assert run.ids("customers") == ids(sandbox, "customers")[:100], "each record once"
    served = [r for r in sandbox.request_log() if r["path"] == "/v1/customers"]
    assert len(served) == 2


def test_empty_pages_with_a_fresh_cursor_forever_fail_the_stream(sandbox: SandboxServer) -> None:
    sandbox.add_fault({"kind": "empty", "path": "/v1/customers", "skip": 1, "times": -1})
    run = run_cli(config_for(sandbox.base_url), env=DEBUG, timeout=HANG)
    line = failure_line(run, sandbox)
    assert "more than 100 empty pages in a row, each with a cursor" in line
    assert run.ids("customers") == ids(sandbox, "customers")[:100]
    served = [r for r in sandbox.request_log() if r["path"] == "/v1/customers"]
    assert len(served) == 1 + 101


# 13. A body inflating past the cap is refused, and read no further.


def test_a_gzip_bomb_is_refused_at_the_cap(
    sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert transport.MAX_ANSWER_BYTES == 256 << 20  # the cap docs/api.md states
    monkeypatch.setattr(transport, "MAX_ANSWER_BYTES", 1 << 20)  # a bomb the test can afford
    sandbox.add_fault({"kind": "gzip", "path": "/v1/campaigns", "size": 64 << 20, "times": -1})
    run = run_tap(config_for(sandbox.base_url), expect_failure=True)
    assert "campaigns: stream 'campaigns': the answer is larger than 1,048,576 bytes" in str(
        run.error
    )
    assert "(GET /v1/campaigns)" in str(run.error)
    assert len([r for r in sandbox.request_log() if r["path"] == "/v1/campaigns"]) == 1
    assert run.ids("customers") == ids(sandbox, "customers")


def test_a_gzipped_answer_under_the_cap_is_read(sandbox: SandboxServer) -> None:
    sandbox.add_fault({"kind": "gzip", "path": "/v1/campaigns", "size": 1 << 20, "times": -1})
    run = run_tap(config_for(sandbox.base_url))
    assert run.ids("campaigns") == ids(sandbox, "campaigns")


# 16. Unusable Retry-After and expires_in values are treated as absent; the cap is true.


@pytest.mark.parametrize(
    "retry_after",
    ["nan", "Sun, 06 Nov 1994 08:49:37 -0000", "Sun, 06 Nov 1994 08:49:37", "soon"],
)
def test_an_unusable_retry_after_is_absent(sandbox: SandboxServer, retry_after: str) -> None:
    fault = {"kind": "status", "status": 429, "headers": {"Retry-After": retry_after}}
    sandbox.add_fault(fault | {"path": "/v1/campaigns"})
    run = run_tap(config_for(sandbox.base_url))
    assert run.ids("campaigns") == ids(sandbox, "campaigns")
    served = [r["status"] for r in sandbox.request_log() if r["path"] == "/v1/campaigns"]
    assert served[:2] == [429, 200]


def test_a_token_lifetime_of_401_digits_is_absent(sandbox: SandboxServer) -> None:
    huge = "1" + "0" * 400
    body = f'{{"access_token": "{{token}}", "token_type": "bearer", "expires_in": {huge}}}'
    sandbox.add_fault({"kind": "raw", "path": TOKEN, "body": body})
    run = run_cli(config_for(sandbox.base_url), env=DEBUG, timeout=HANG)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "Fetched an access token valid for 3600 s" in run.stderr
    assert run.ids("campaigns") == ids(sandbox, "campaigns")


class Answer:
    def __init__(self, retry_after: str) -> None:
        self.headers = {"Retry-After": retry_after}


class RefusalError(Exception):
    def __init__(self, retry_after: str) -> None:
        self.response = Answer(retry_after)


def test_a_retry_after_of_three_days_waits_the_cap_jitter_included() -> None:
    waits = RetryPolicy(max_retries=3).wait_generator()
    next(waits)
    asked = waits.send(RefusalError(str(3 * 24 * 3600)))
    assert asked == MAX_RETRY_AFTER
    assert max(RetryPolicy.jitter(asked) for _ in range(200)) <= MAX_RETRY_AFTER
    assert max(RetryPolicy.jitter(10.0) for _ in range(200)) > 10.0, "jitter still spreads"


# 17. Failures without a usable answer: the stream, the path, the cause and the fix.

GIVEN_UP = {
    "dropped": (
        {"kind": "drop"},
        "the connection failed or was dropped, in 2 attempt(s) (GET /v1/campaigns)",
    ),
    "cut off": (
        {"kind": "truncated"},
        "the answer was cut off, in 2 attempt(s) (GET /v1/campaigns)",
    ),
}


@pytest.mark.parametrize("case", GIVEN_UP)
def test_a_connection_failing_past_max_retries_is_explained(
    sandbox: SandboxServer, case: str
) -> None:
    fault, said = GIVEN_UP[case]
    sandbox.add_fault(fault | {"path": "/v1/campaigns", "times": -1})
    run = run_cli(config_for(sandbox.base_url, max_retries=1), env=DEBUG, timeout=HANG)
    line = failure_line(run, sandbox)
    assert f"stream 'campaigns': {said}" in line
    assert "rerun later, or raise max_retries" in line
    (retry,) = [entry for entry in run.stderr.splitlines() if "Retry 1 of 1 in" in entry]
    for said_by_us in (line, retry):
        assert said.split(",")[0] in said_by_us
        for urllib3_words in ("Connection aborted", "RemoteDisconnected", "IncompleteRead"):
            assert urllib3_words not in said_by_us


def test_a_token_endpoint_dropping_connections_is_explained(sandbox: SandboxServer) -> None:
    sandbox.add_fault({"kind": "drop", "path": TOKEN, "times": -1})
    run = run_cli(config_for(sandbox.base_url, max_retries=1), env=DEBUG, timeout=HANG)
    line = failure_line(run, sandbox)
    cause = "(the connection failed or was dropped)"
    assert f"Token request to {sandbox.base_url}{TOKEN} failed after 1 retries {cause}" in line
    (retry,) = [entry for entry in run.stderr.splitlines() if "; retry 1 in" in entry]
    assert f"failed {cause}; retry 1 in" in retry
    for said_by_us in (line, retry):
        assert "Connection aborted" not in said_by_us


def test_a_cursor_too_long_to_send_back_is_the_apis_to_fix(sandbox: SandboxServer) -> None:
    cursor = "A" * 1_000_000
    sandbox.add_fault(
        {"kind": "paging", "path": "/v1/campaigns", "paging": {"next": {"after": cursor}}}
    )
    run = run_cli(config_for(sandbox.base_url, page_size=10), env=DEBUG, timeout=HANG)
    line = failure_line(run, sandbox)
    assert "stream 'campaigns': HTTP 414" in line
    assert "(GET /v1/campaigns)" in line
    assert "the URL, with the cursor the API sent, is too long" in line
    assert "report it to the API provider" in line
    assert "max_retries" not in line


NOT_JSON = {
    "nested 10,000 deep": (
        '{"data": ' + "[" * 10_000 + "]" * 10_000 + "}",
        "maximum recursion depth exceeded",
    ),
    "a lone surrogate": ('{"data": [{"id": "\\ud800"}]}', "Input data was truncated"),
    "invalid UTF-8": ('{"data": [{"id": "\xff"}]}', "Invalid UTF-8"),
}


@pytest.mark.parametrize("case", NOT_JSON)
def test_a_body_that_does_not_decode_says_why(sandbox: SandboxServer, case: str) -> None:
    body, reason = NOT_JSON[case]
    sandbox.add_fault({"kind": "raw", "path": "/v1/campaigns", "body": body, "times": -1})
    run = run_cli(config_for(sandbox.base_url, max_retries=0), env=DEBUG, timeout=HANG)
    line = failure_line(run, sandbox)
    assert "stream 'campaigns': HTTP 200 with a body that is not JSON (" in line
    assert reason in line
    assert "(GET /v1/campaigns)" in line
    assert "the API sent malformed JSON: report it to the API provider" in line


def test_the_sandbox_raw_fault_serves_bytes_as_given(sandbox: SandboxServer) -> None:
    body = json.dumps({"data": []}) + "\xff"
    sandbox.add_fault({"kind": "raw", "path": "/v1/events", "body": body, "status": 418})
    answer = requests.get(sandbox.base_url + "/v1/events", timeout=10)
    assert (answer.status_code, answer.content) == (418, body.encode("latin-1"))


def test_an_error_message_of_the_server_is_quoted_on_one_line_without_secrets(
    sandbox: SandboxServer,
) -> None:
    message = f"not here\nyou sent {{authorization}}\r\nand {CLIENT_SECRET}"
    body = json.dumps({"error": {"code": "not_found", "message": message}})
    sandbox.add_fault({"kind": "raw", "path": "/v1/campaigns", "status": 404, "body": body})
    run = run_cli(config_for(sandbox.base_url), env=DEBUG, timeout=HANG)
    line = failure_line(run, sandbox)
    assert "HTTP 404 not_found: not here?you sent Bearer ***??and *** (GET /v1/campaigns)" in line
