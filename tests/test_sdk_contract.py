"""What the tap borrows from singer-sdk (private or final members), pinned so an upgrade fails here.

PINS lists every such member; a scan of tap_analytics/'s source (sdkscan.py) fails a test by
name when the code uses one that PINS lacks. Each failure names the SDK version, the member
that moved and the tap code that relies on it.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import io
import json
import pkgutil
import signal
import subprocess
import sys
import textwrap
import typing as t
from dataclasses import dataclass
from importlib.metadata import version

import pytest
import requests
from singer_sdk import RESTStream, Stream, Tap, metrics, plugin_base
from singer_sdk.exceptions import ConfigValidationError
from singer_sdk.helpers import _catalog as sdk_catalog
from singer_sdk.helpers import _state as sdk_state
from singer_sdk.mapper import SameRecordTransform
from singer_sdk.pagination import BaseAPIPaginator
from singer_sdk.plugin_base import PluginBase
from singer_sdk.singerlib import RecordMessage
from singer_sdk.singerlib.encoding.base import GenericSingerWriter

import sdkscan
import tap_analytics
from tap_analytics.output import LockedWriter
from tap_analytics.progress import RecordCounter
from tap_analytics.sync import AnalyticsStream
from tap_analytics.tap import TapAnalytics
from tap_analytics.version import package_version
from tapkit import config_for, parse_lines

if t.TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from tap_analytics.sandbox import SandboxServer

SDK = f"singer-sdk {version('singer-sdk')}"
OFFLINE = "http://127.0.0.1:9"  # never requested: these taps only build streams with schemas


Call = tuple[tuple[object, ...], dict[str, object]]


def call(*args: object, **kwargs: object) -> Call:
    """The arguments of one call, as the tap passes them."""
    return args, kwargs


@dataclass(frozen=True)
class Pin:
    """An SDK member the tap relies on: who defines it, what relies on it, the call it makes."""

    owner: t.Any  # the SDK class or module that defines it
    member: str
    where: str  # the tap code that relies on it
    call: Call | None = None  # None: read, set or overridden, not called by the tap

    @property
    def name(self) -> str:
        """The name the source scan (sdkscan.py) reports a use by."""
        if inspect.ismodule(self.owner):
            return f"{self.owner.__name__}.{self.member}"
        return self.member

    @property
    def label(self) -> str:
        """`Owner.member`, as failure messages and test ids say it."""
        return f"{getattr(self.owner, '__name__', self.owner)}.{self.member}"

    @property
    def scanned(self) -> bool:
        """Whether the scan must find it: a private or final member (else public, kept here)."""
        owner_private = inspect.ismodule(self.owner) and any(
            map(sdkscan.is_private, self.owner.__name__.split("."))
        )
        final = inspect.isclass(self.owner) and sdkscan.is_final(self.owner, self.member)
        return owner_private or sdkscan.is_private(self.member) or final


# Every private or final SDK member tap_analytics/ uses (the scan in sdkscan.py finds each one
# in the code; test_every_private_or_final_sdk_use_is_pinned compares), and the public members
# that are easy to miss in a release note. Each is checked to exist, each call against the
# member's signature; the tests below pin what the tap relies on them to do.
PINS: list[Pin] = [
    # Tap and PluginBase
    Pin(PluginBase, "_validate_config", "tap.py overrides it", call(raise_errors=True)),
    Pin(PluginBase, "_config", "tap.py sets it to the checked settings (Tap.config views it)"),
    Pin(Tap, "_handle_termination", "tap.py overrides it", call(15, None)),
    Pin(Tap, "sync_all", "tap.py overrides it (final in the SDK)", call()),
    Pin(Tap, "_reset_state_progress_markers", "tap.py sync_all", call()),
    Pin(plugin_base, "_ConfigInput", "tap.py: the type of the config the tap is given"),
    Pin(Tap, "name", "tap.py TapAnalytics.name"),
    Pin(Tap, "package_name", "tap.py TapAnalytics.package_name"),
    Pin(Tap, "config_jsonschema", "tap.py TapAnalytics.config_jsonschema"),
    Pin(Tap, "message_writer_class", "tap.py TapAnalytics.message_writer_class (LockedWriter)"),
    Pin(Tap, "capabilities", "tap.py TapAnalytics.capabilities"),
    # Stream: the record loop
    Pin(Stream, "_sync_records", "sync.py overrides it", call(context=None)),
    Pin(Stream, "_stream_version", "sync.py writes it into verbatim RECORDs"),
    Pin(Stream, "_generate_record_messages", "sync.py _encode", call({})),
    Pin(Stream, "_write_activate_version_message", "sync.py _sync_records", call(1)),
    Pin(Stream, "_finalize_state", "sync.py _checkpoint", call({})),
    Pin(Stream, "log_sync_costs", "sync_all.py sync_selected", call()),
    Pin(Stream, "post_process", "sync.py _post_processed", call({}, None)),
    Pin(Stream, "get_record_counter", "sync.py _sync_records", call()),
    Pin(Stream, "get_sync_timer", "sync.py _sync_records", call()),
    Pin(Stream, "ABORT_AT_RECORD_COUNT", "sync.py _sync_records stops each stream there"),
    Pin(Stream, "tap_state", "sync.py _checkpoint writes it as the STATE value"),
    Pin(Stream, "stream_state", "sync.py check_state and _checkpoint"),
    Pin(Stream, "mask", "sync.py _writes_records_verbatim"),
    Pin(Stream, "stream_maps", "sync.py _writes_records_verbatim"),
    Pin(Stream, "primary_keys", "client.py ResourceStream.__init__ sets it"),
    Pin(Stream, "replication_key", "client.py ResourceStream.__init__ sets it"),
    Pin(sdk_state, "write_starting_replication_value", "sync.py _sync_records", call({}, None)),
    # Stream: a field the schema lacks (sync.py _widen_schema, then a new SCHEMA)
    Pin(Stream, "_schema", "sync.py _widen_schema replaces the schema"),
    Pin(Stream, "_input_schema", "sync.py _widen_schema widens the catalog's schema"),
    Pin(Stream, "_tap", "sync.py _widen_schema registers the schema with _tap.mapper"),
    Pin(Stream, "_stream_maps", "sync.py _widen_schema clears it, to be read again"),
    Pin(Stream, "_generate_schema_messages", "sync.py writes the widened SCHEMA", call()),
    Pin(sdk_catalog, "get_selected_schema", "sync.py _widen_schema", call("s", {}, None)),
    Pin(SameRecordTransform, "flattening_enabled", "sync.py _writes_records_verbatim"),
    Pin(GenericSingerWriter, "format_message", "sync.py _encode"),
    # RESTStream: the page loop
    Pin(RESTStream, "__init__", "client.py", call(None, name="", schema={}, path="")),
    Pin(RESTStream, "_request", "pages.py fetched_pages", call(None, None)),
    Pin(RESTStream, "_prepare_request", "pages.py", call(context=None, page=None)),
    Pin(RESTStream, "request_decorator", "pages.py fetched_pages", call(None)),
    Pin(RESTStream, "get_http_request_counter", "pages.py fetched_pages", call()),
    Pin(RESTStream, "update_sync_costs", "pages.py fetched_pages", call(None, None, None)),
    Pin(RESTStream, "requests_session", "sync.py _sync_records sets its proxies"),
    # Metrics
    Pin(metrics.Counter, "_pop", "progress.py RecordCounter overrides it", call()),
]


# What the SDK's Tap.sync_all uses, and how the tap's parallel sync_all covers each.
SYNC_ALL_DUTIES = {
    "self._reset_state_progress_markers": "called by tap.py sync_all",
    "self._set_compatible_replication_methods": "only acts on child streams: none",
    "self.state": "written first by sync_all.py when not empty",
    "self._state_writer": "the public state_writer writes the first and the interrupted STATE",
    "self.streams": "sync_all.py syncs the selected ones",
    "self.logger": "only logs skipped and child streams: none are synced",
    "stream.selected": "sync_all.py syncs only selected streams",
    "stream.has_selected_descendents": "no resource has child streams",
    "stream.parent_stream_type": "no resource has child streams",
    "stream.name": "only in log lines",
    "stream.sync": "sync_all.py sync_stream, one stream per worker thread",
    "stream.finalize_state_progress_markers": "sync.py _checkpoint(final=True) finalizes",
    "stream.log_sync_costs": "called by sync_all.py for every synced stream",
}

# What the SDK's Stream._sync_records uses, and how sync.py's record loop covers each.
SYNC_RECORDS_DUTIES = {
    "self.get_record_counter": "same counter",
    "self.get_sync_timer": "same timer",
    "self.partitions": "no partitions: no resource is listed per parent or partition",
    "self._get_state_partition_context": "no partitions",
    "self.get_context_state": "no partitions",
    "self.selected": "writes only for selected streams",
    "self._write_starting_replication_value": "the helper, with the starting instant",
    "self.get_records": "same records, a page at a time (_pages)",
    "self._check_max_record_limit": "same dry-run limit",
    "self.post_process": "called when a subclass overrides it",
    "self._process_record": "only feeds child streams: none",
    "self.state_manager": "only logs sort errors: bookmarks compare instants instead",
    "self._write_record_message": "_page_lines verbatim, else _encode a record at a time",
    "self._increment_stream_state": "Position.advance per written part",
    "self.STATE_MSG_FREQUENCY": "STATE_EVERY",
    "self._write_state_message": "_checkpoint writes STATE with the records",
    "self._finalize_state": "_checkpoint(final=True)",
    "self.stream_state": "_checkpoint",
}

# What the SDK's RESTStream.request_records uses, and how pages.py covers each.
REQUEST_RECORDS_DUTIES = {
    "self.get_new_paginator": "same paginator",
    "self.request_decorator": "same retries around the same _request",
    "self._request": "same request",
    "self.prepare_request": "deprecated hook: not overridden here",
    "self._prepare_request": "same prepared request",
    "self.get_http_request_counter": "same counter",
    "self.update_sync_costs": "called per page",
    "self.parse_response": "same parser",
    "self.log": "only says an empty page stopped paging: the cursor decides here",
}


def duties(function: Callable[..., object], *receivers: str) -> set[str]:
    """The attributes a function's source reads on the given names (`self`, loop variables)."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(function)))
    return {
        f"{node.value.id}.{node.attr}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id in receivers
    }


def tap_classes() -> list[type]:
    """Every class the tap package defines (the sandbox is a separate program)."""
    classes = []
    for module_info in pkgutil.iter_modules(tap_analytics.__path__):
        if module_info.name == "sandbox":
            continue
        module = importlib.import_module(f"tap_analytics.{module_info.name}")
        classes += [
            value
            for value in vars(module).values()
            if inspect.isclass(value) and value.__module__ == module.__name__
        ]
    return classes


def function_of(member: object) -> object:
    """The function behind a method, classmethod, staticmethod or property."""
    if isinstance(member, property):
        return member.fget
    return getattr(member, "__func__", member)


def overrides() -> list[tuple[type, str, object]]:
    """Every member of a tap class marked with typing_extensions.override."""
    return [
        (cls, name, member)
        for cls in tap_classes()
        for name, member in vars(cls).items()
        if getattr(function_of(member), "__override__", False)
    ]


def defining_base(cls: type, name: str) -> type | None:
    """The nearest base class that defines `name`."""
    return next((base for base in cls.__mro__[1:] if name in vars(base)), None)


def offline_tap(**settings: object) -> TapAnalytics:
    """A tap whose messages go to a buffer; it makes no request unless synced."""
    tap = TapAnalytics(config=config_for(OFFLINE, **settings))
    tap.writer.out = io.BytesIO()
    return tap


def written(tap: TapAnalytics) -> list[dict[str, t.Any]]:
    """The messages a tap from offline_tap (or with a buffer) has written."""
    out = t.cast("io.BytesIO", tap.writer.out)
    return parse_lines(out.getvalue())


# The pin list against the code, then each pin against the SDK


def test_every_private_or_final_sdk_use_is_pinned() -> None:
    uses = sdkscan.sdk_uses()
    pinned = {pin.name for pin in PINS if pin.scanned}
    unpinned: dict[str, list[str]] = {}
    for use in uses:
        if use.name not in pinned:
            unpinned.setdefault(f"{use.owner}.{use.name}", []).append(use.where)
    assert not unpinned, (
        f"tap_analytics/ uses private or final SDK members that nothing pins: {unpinned}. "
        "For each, add to PINS in tests/test_sdk_contract.py: Pin(<SDK class or module>, "
        "'<member>', '<file> <function> relies on it', call(<the arguments it passes>) if it "
        "calls it), and a test there of what the tap relies on it to do (prefer a public hook)"
    )
    stale = sorted(pinned - {use.name for use in uses})
    assert not stale, (
        f"PINS in tests/test_sdk_contract.py names {stale}, which tap_analytics/ no longer "
        "uses: remove those Pins and the tests that pin their behaviour"
    )


def test_the_scan_finds_each_kind_of_use() -> None:
    uses = {use.name: use.owner for use in sdkscan.sdk_uses()}
    assert uses["_pop"] == "Counter"  # an override of a private method
    assert uses["sync_all"] == "Tap"  # an override of a final method
    assert uses["_prepare_request"] == "_HTTPStream"  # called on another object
    assert uses["_schema"] == "Stream"  # set on self
    assert "singer_sdk.helpers._catalog.get_selected_schema" in uses  # a private module
    assert "_finished" not in uses, "pacing.py's own _finished is not the paginator's"
    assert "_session" not in uses, "auth.py's own _session is not OAuthAuthenticator's"


@pytest.mark.parametrize("pin", PINS, ids=[pin.label for pin in PINS])
def test_the_sdk_still_defines_each_pinned_member(pin: Pin) -> None:
    owners = [pin.owner] if inspect.ismodule(pin.owner) else list(pin.owner.__mro__)
    defined = any(
        pin.member in {*vars(owner), *vars(owner).get("__annotations__", {})}
        or (inspect.isclass(owner) and pin.member in sdkscan.defined_by_sdk_class(owner))
        for owner in owners
    )
    assert defined, f"{SDK}: {pin.label} is gone; {pin.where}"


@pytest.mark.parametrize("pin", [p for p in PINS if p.call], ids=[p.label for p in PINS if p.call])
def test_the_sdk_still_takes_each_call_the_tap_makes(pin: Pin) -> None:
    function = getattr(pin.owner, pin.member)
    assert callable(function), f"{SDK}: {pin.label} is no longer callable; {pin.where}"
    args, kwargs = t.cast("Call", pin.call)
    if not inspect.ismodule(pin.owner):
        args = (None, *args)  # self
    try:
        inspect.signature(function).bind(*args, **kwargs)
    except TypeError as exc:
        pytest.fail(
            f"{SDK}: {pin.label}{inspect.signature(function)} no longer takes the call "
            f"{pin.where} makes ({exc})"
        )


def test_every_override_overrides_something_the_sdk_defines() -> None:
    marked = overrides()
    assert {name for cls, name, _ in marked if cls is TapAnalytics} >= {
        "sync_all",
        "_validate_config",
        "_handle_termination",
    }, "the @override markers are not found (typing_extensions changed how it marks?)"
    orphans = [
        f"{cls.__module__}.{cls.__name__}.{name}"
        for cls, name, _ in marked
        if defining_base(cls, name) is None
    ]
    assert not orphans, (
        f"{SDK}: no base class defines {orphans} any more (renamed or removed upstream); "
        "the tap's override is dead code and what it did no longer happens"
    )


def test_every_sdk_override_is_marked() -> None:
    unmarked = [
        f"{cls.__module__}.{cls.__name__}.{name}"
        for cls in tap_classes()
        for name, member in vars(cls).items()
        if not name.startswith("__")
        and inspect.isfunction(function_of(member))
        and defining_base(cls, name) is not None
        and not getattr(function_of(member), "__override__", False)
    ]
    assert not unmarked, f"mark these overrides with typing_extensions.override: {unmarked}"


def test_every_override_accepts_the_calls_its_base_takes() -> None:
    mismatched, compared = [], set()
    for cls, name, member in overrides():
        ours = function_of(member)
        base = defining_base(cls, name)
        theirs = function_of(vars(base)[name]) if base else None
        if isinstance(member, property) or not callable(ours) or not callable(theirs):
            continue
        compared.add(name)
        parameters = inspect.signature(ours).parameters.values()
        kinds = {parameter.kind for parameter in parameters}
        accepted = {(p.name, p.kind) for p in parameters}
        for parameter in inspect.signature(theirs).parameters.values():
            positional = parameter.kind <= inspect.Parameter.POSITIONAL_OR_KEYWORD
            if (parameter.name, parameter.kind) in accepted or (
                inspect.Parameter.VAR_POSITIONAL if positional else inspect.Parameter.VAR_KEYWORD
            ) in kinds:
                continue
            mismatched.append(f"{cls.__name__}.{name}: {parameter.name} ({parameter.kind.name})")
    assert compared >= {"sync_all", "_validate_config", "_handle_termination", "_sync_records"}
    assert not mismatched, (
        f"{SDK}: the SDK calls these overrides with parameters they do not take: {mismatched}"
    )


# Tap: sync_all, validation, termination


def test_the_cli_syncs_through_the_final_sync_all(tmp_path: Path) -> None:
    assert getattr(vars(Tap).get("sync_all"), "__final__", False), (
        f"{SDK}: Tap.sync_all is gone or no longer final; tap_analytics/tap.py overrides it "
        "and its `type: ignore[misc]` would hide a rename"
    )
    config = tmp_path / "config.json"
    config.write_text(json.dumps(config_for(OFFLINE)))
    spy = textwrap.dedent("""
        from tap_analytics.tap import TapAnalytics
        TapAnalytics.sync_all = lambda self: print("sync_all of", type(self).__name__)
        TapAnalytics.cli()
    """)
    result = subprocess.run(
        [sys.executable, "-c", spy, "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.stdout.splitlines() == ["sync_all of TapAnalytics"], (
        f"{SDK}: Tap.cli -> invoke no longer calls sync_all; tap_analytics/tap.py overrides it "
        f"(exit {result.returncode}, stdout {result.stdout[:200]!r})"
    )
    assert result.returncode == 0, result.stderr


def test_constructing_the_tap_validates_through_validate_config(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: list[dict[str, bool]] = []
    original = TapAnalytics._validate_config

    def spy(self: TapAnalytics, **kwargs: bool) -> list[str]:
        seen.append(kwargs)
        return original(self, **kwargs)

    monkeypatch.setattr(TapAnalytics, "_validate_config", spy)
    TapAnalytics(config=config_for(OFFLINE))
    TapAnalytics(config=config_for(OFFLINE), validate_config=False)
    assert seen == [{"raise_errors": True}, {"raise_errors": False}], (
        f"{SDK}: PluginBase.__init__ no longer calls _validate_config(raise_errors=...); "
        "tap_analytics/tap.py overrides it to validate settings"
    )


@pytest.mark.parametrize(
    ("setting", "where"),
    [
        ({"stream_maps": "nonsense"}, "config['stream_maps']"),
        ({"client": {"auth": {"scope": 7}}}, "config['client']['auth']['scope']"),
    ],
)
def test_the_sdks_validation_names_the_setting_as_the_tap_parses_it(
    setting: dict[str, object], where: str
) -> None:
    tap = offline_tap()
    tap._config.update(setting)
    with pytest.raises(ConfigValidationError) as refused:
        PluginBase._validate_config(tap, raise_errors=True)
    assert any(error.endswith(f" in {where}") for error in refused.value.errors), (
        f"{SDK}: the SDK's validation errors no longer end with ' in {where}' "
        f"({refused.value.errors}); tap_analytics/settings.py already_reported parses it"
    )


def test_the_config_view_shows_what_validation_fills_into_config() -> None:
    tap = offline_tap()
    tap._config["page_size"] = 7
    assert tap.config["page_size"] == 7, (
        f"{SDK}: Tap.config is no longer a view of Tap._config; tap_analytics/tap.py "
        "sets _config to the checked copy of the settings, defaults filled"
    )


def test_termination_signals_reach_handle_termination() -> None:
    previous = {number: signal.getsignal(number) for number in (signal.SIGINT, signal.SIGTERM)}
    try:
        tap = offline_tap()
        for number in previous:
            assert signal.getsignal(number) == tap._handle_termination, (
                f"{SDK}: signal {number} no longer calls _handle_termination; "
                "tap_analytics/tap.py overrides it to stop the run with a nonzero exit"
            )
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def test_progress_markers_are_reset_by_the_tap_helper() -> None:
    tap = TapAnalytics(
        config=config_for(OFFLINE),
        state={"bookmarks": {"customers": {"progress_markers": {"replication_key": "x"}}}},
    )
    tap._reset_state_progress_markers()
    assert tap.state["bookmarks"]["customers"] == {}, (
        f"{SDK}: Tap._reset_state_progress_markers no longer clears progress markers; "
        "tap_analytics/tap.py sync_all relies on it"
    )


def test_the_state_writer_writes_through_the_taps_writer() -> None:
    tap = offline_tap()
    assert isinstance(tap.message_writer, LockedWriter)
    tap.state_writer.write_state({"bookmarks": {"customers": {}}})
    assert written(tap) == [{"type": "STATE", "value": {"bookmarks": {"customers": {}}}}], (
        f"{SDK}: Tap.state_writer no longer writes STATE through the message writer; "
        "tap_analytics/sync_all.py writes the first and the interrupted STATE with it"
    )


# Stream: the record loop and what it calls


def test_stream_sync_runs_the_record_loop_through_sync_records(
    sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[dict[str, object], int | None]] = []
    original = AnalyticsStream._sync_records

    def spy(self: AnalyticsStream, *args: t.Any, **kwargs: t.Any) -> t.Any:
        calls.append((kwargs, self._stream_version))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(AnalyticsStream, "_sync_records", spy)
    snapshot = {
        "name": "snapshot",
        "endpoint": {"path": "/v1/campaigns"},
        "write_disposition": "replace",
        "schema": "campaigns.json",
    }
    tap = TapAnalytics(config=config_for(sandbox.base_url, resources=[snapshot]))
    tap.writer.out = io.BytesIO()
    tap.streams["snapshot"].sync()
    assert [kwargs for kwargs, _ in calls] == [{"context": None}], (
        f"{SDK}: Stream.sync no longer calls _sync_records(context=...); "
        "tap_analytics/sync.py overrides it"
    )
    messages = written(tap)
    versions = [m["version"] for m in messages if m["type"] == "ACTIVATE_VERSION"]
    assert calls[0][1] is not None, (
        f"{SDK}: Stream.sync no longer sets _stream_version before _sync_records; "
        "tap_analytics/sync.py writes it into verbatim RECORDs"
    )
    assert versions == [calls[0][1], calls[0][1]], (
        f"{SDK}: _write_activate_version_message no longer writes the version; "
        "tap_analytics/sync.py calls it after the records"
    )
    assert {m["version"] for m in messages if m["type"] == "RECORD"} == {calls[0][1]}


def test_the_dry_run_limit_stops_the_record_loop(sandbox: SandboxServer) -> None:
    limit = 3
    tap = TapAnalytics(config=config_for(sandbox.base_url))
    tap.writer.out = io.BytesIO()
    assert Stream.ABORT_AT_RECORD_COUNT is None
    tap.run_sync_dry_run(dry_run_record_limit=limit)
    counts: dict[str, int] = {}
    for message in written(tap):
        if message["type"] == "RECORD":
            counts[message["stream"]] = counts.get(message["stream"], 0) + 1
    assert counts == dict.fromkeys(tap.streams, limit), (
        f"{SDK}: the dry run no longer stops each stream at ABORT_AT_RECORD_COUNT "
        f"({counts}); tap_analytics/sync.py _pages stops each stream there"
    )


def test_pages_are_requested_through_prepare_request_and_request(
    sandbox: SandboxServer,
) -> None:
    tap = TapAnalytics(config=config_for(sandbox.base_url, page_size=5))
    stream = tap.streams["customers"]
    assert isinstance(stream, AnalyticsStream)
    paginator = stream.get_new_paginator()
    assert isinstance(paginator, BaseAPIPaginator)
    prepared = stream._prepare_request(context=None, page=paginator)
    assert isinstance(prepared, requests.PreparedRequest), (
        f"{SDK}: RESTStream._prepare_request no longer prepares a request; "
        "tap_analytics/pages.py calls it per page"
    )
    response = stream.request_decorator(stream._request)(prepared, None)
    assert response.status_code == requests.codes.ok
    assert response.request.headers["Authorization"].startswith("Bearer "), (
        f"{SDK}: RESTStream._request no longer applies the authenticator; "
        "tap_analytics/pages.py sends every page with it"
    )
    assert len(list(stream.parse_response(response))) == 5


def test_record_messages_are_generated_with_selection_applied() -> None:
    tap = TapAnalytics(config=config_for(OFFLINE))
    catalog = tap.catalog_dict
    for entry in catalog["streams"]:
        for metadata in entry["metadata"]:
            if metadata["breadcrumb"] == ["properties", "email"]:
                metadata["metadata"]["selected"] = False
    stream = TapAnalytics(config=config_for(OFFLINE), catalog=catalog).streams["customers"]
    record = {"id": "c1", "email": "a@example.com", "updated_at": "2024-01-01T00:00:00Z"}
    messages = list(stream._generate_record_messages(dict(record)))
    assert [type(m) for m in messages] == [RecordMessage], (
        f"{SDK}: Stream._generate_record_messages no longer yields RecordMessages; "
        "tap_analytics/sync.py _encode writes them"
    )
    assert messages[0].record == {"id": "c1", "updated_at": "2024-01-01T00:00:00Z"}, (
        f"{SDK}: Stream._generate_record_messages no longer drops deselected properties; "
        "tap_analytics/sync.py relies on it off the verbatim path"
    )


def test_the_starting_value_helper_writes_what_finalize_state_drops() -> None:
    stream = offline_tap().streams["customers"]
    state = stream.stream_state
    assert state is stream.tap_state["bookmarks"]["customers"], (
        f"{SDK}: Stream.stream_state is no longer inside Stream.tap_state; "
        "tap_analytics/sync.py _checkpoint writes tap_state"
    )
    sdk_state.write_starting_replication_value(state, "2024-01-01T00:00:00Z")
    assert sdk_state.get_starting_replication_value(state) == "2024-01-01T00:00:00Z"
    stream._finalize_state(state)
    assert sdk_state.get_starting_replication_value(state) is None, (
        f"{SDK}: Stream._finalize_state no longer drops the starting replication value; "
        "tap_analytics/sync.py writes it and finalizes at the end"
    )


def test_mask_and_stream_maps_are_what_the_verbatim_path_checks() -> None:
    stream = offline_tap().streams["customers"]
    assert all(stream.mask.values())
    assert len(stream.stream_maps) == 1
    assert type(stream.stream_maps[0]) is SameRecordTransform
    assert stream.stream_maps[0].stream_alias == "customers"
    assert not stream.stream_maps[0].flattening_enabled
    mapped = offline_tap(stream_maps={"customers": {"email": "__NULL__"}})
    assert type(mapped.streams["customers"].stream_maps[0]) is not SameRecordTransform, (
        f"{SDK}: a stream map no longer replaces the SameRecordTransform; "
        "tap_analytics/sync.py would write unmapped records verbatim"
    )
    flat = offline_tap(flattening_enabled=True, flattening_max_depth=1)
    assert flat.streams["sessions"].stream_maps[0].flattening_enabled, (
        f"{SDK}: flattening no longer shows in stream_maps[0].flattening_enabled; "
        "tap_analytics/sync.py would write unflattened records verbatim"
    )


@pytest.mark.parametrize(
    ("owner", "name", "receivers", "expected", "replacement"),
    [
        (Tap, "sync_all", ("self", "stream"), SYNC_ALL_DUTIES, "tap_analytics/sync_all.py"),
        (Stream, "_sync_records", ("self",), SYNC_RECORDS_DUTIES, "tap_analytics/sync.py"),
        (
            RESTStream,
            "request_records",
            ("self",),
            REQUEST_RECORDS_DUTIES,
            "tap_analytics/pages.py",
        ),
    ],
    ids=["Tap.sync_all", "Stream._sync_records", "RESTStream.request_records"],
)
def test_the_replaced_sdk_loops_do_nothing_new(
    owner: type, name: str, receivers: tuple[str, ...], expected: dict[str, str], replacement: str
) -> None:
    function = getattr(owner, name, None)
    assert function is not None, (
        f"{SDK}: {owner.__name__}.{name} is gone; {replacement} replaces it"
    )
    found = duties(function, *receivers)
    assert found == set(expected), (
        f"{SDK}: {owner.__name__}.{name} now also uses {sorted(found - set(expected))} and no "
        f"longer {sorted(set(expected) - found)}; {replacement} replaces it: do the same there "
        "(or say why not) and update this test's table"
    )


def test_the_versions_logged_are_the_installed_ones() -> None:
    # The tap reads them from METADATA itself (start-up), where the SDK asks importlib.
    assert TapAnalytics.plugin_version == version("tap-analytics")
    assert TapAnalytics.sdk_version == version("singer-sdk")
    assert package_version("no-such-distribution") == "[could not be detected]"


# A field the schema lacks: what sync.py _widen_schema changes in the SDK's stream


def test_a_widened_schema_reaches_the_catalog_schema_the_stream_maps_and_schema_messages() -> None:
    catalog = offline_tap().catalog_dict
    tap = TapAnalytics(
        config=config_for(OFFLINE, stream_maps={"customers": {"email": "__NULL__"}}),
        catalog=catalog,
    )
    stream = tap.streams["customers"]
    assert isinstance(stream, AnalyticsStream)
    assert stream._input_schema is not None, (
        f"{SDK}: Stream._input_schema no longer holds the catalog's schema; "
        "tap_analytics/sync.py _widen_schema widens it"
    )
    assert stream._tap is tap
    before = stream.stream_maps  # read once, so _widen_schema must make the SDK read them again
    stream._widen_schema({"loyalty_tier": {"type": ["string", "null"]}})
    assert "loyalty_tier" in stream.schema["properties"], (
        f"{SDK}: Stream.schema no longer returns Stream._schema; sync.py _widen_schema sets it"
    )
    assert "loyalty_tier" in stream.effective_schema["properties"], (
        f"{SDK}: Stream.effective_schema no longer returns Stream._input_schema; "
        "sync.py _widen_schema widens it"
    )
    assert stream.stream_maps is not before, (
        f"{SDK}: Stream.stream_maps no longer reads the maps again when _stream_maps is None; "
        "sync.py _widen_schema clears it after registering the widened schema"
    )
    (message,) = stream._generate_schema_messages()
    assert message.stream == "customers"
    assert "loyalty_tier" in message.schema["properties"], (
        f"{SDK}: the SCHEMA from _generate_schema_messages lacks a field registered with "
        "_tap.mapper.register_raw_stream_schema; sync.py writes it before the first record "
        "that carries the field"
    )
    mapped = stream.stream_maps[0].transform({"id": "c1", "email": "a@b", "loyalty_tier": "gold"})
    assert mapped == {"id": "c1", "loyalty_tier": "gold"}


def test_get_selected_schema_drops_what_the_catalog_deselects() -> None:
    catalog = offline_tap().catalog_dict
    for entry in catalog["streams"]:
        for metadata in entry["metadata"]:
            if metadata["breadcrumb"] == ["properties", "email"]:
                metadata["metadata"]["selected"] = False
    stream = TapAnalytics(config=config_for(OFFLINE), catalog=catalog).streams["customers"]
    selected = sdk_catalog.get_selected_schema("customers", stream.schema, stream.mask)
    assert "email" not in selected["properties"], (
        f"{SDK}: helpers._catalog.get_selected_schema no longer drops deselected fields; "
        "sync.py _widen_schema registers its result with the mapper"
    )
    assert "email" in stream.schema["properties"], "it works on a copy"


# Metrics: the record counter


def test_counters_write_each_metric_line_through_pop(monkeypatch: pytest.MonkeyPatch) -> None:
    logged: list[int] = []
    monkeypatch.setattr(metrics, "log", lambda _logger, point: logged.append(point.value))
    with metrics.Counter(metrics.Metric.RECORD_COUNT, {}, log_interval=-1) as sdk_counter:
        sdk_counter.increment(2)  # due at once: log_interval -1
        sdk_counter.increment(3)
    assert logged == [2, 3, 0], (
        f"{SDK}: Counter.increment (when due) and the end of its context no longer log "
        f"through _pop, or _pop no longer resets the value ({logged}); "
        "tap_analytics/progress.py RecordCounter overrides _pop"
    )
    assert duties(metrics.Counter._pop, "self") == {
        "self.logger",
        "self.metric",
        "self.value",
        "self.tags",
        "self.last_log_time",
    }, (
        f"{SDK}: Counter._pop now does something else; tap_analytics/progress.py "
        "RecordCounter._pop replaces it: do the same there"
    )
    logged.clear()
    with RecordCounter("customers", endpoint=None, log_interval=-1) as counter:
        counter.increment(2)
        counter.increment(3)
    assert (logged, counter.value) == ([2, 3, 0], 5), "each line counts the records since the last"
