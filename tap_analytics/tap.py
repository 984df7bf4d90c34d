"""The tap: settings, the stream list, and a run that syncs streams in parallel."""

from __future__ import annotations

import gc
import io
import itertools
import json
import logging
import signal
import sys
import typing as t
from functools import cached_property
from importlib import metadata

from singer_sdk import Tap
from singer_sdk.exceptions import ConfigValidationError
from singer_sdk.helpers.capabilities import BATCH_CONFIG, PluginCapabilities, TapCapabilities
from typing_extensions import override

from tap_analytics import inference, redact, resources, settings
from tap_analytics.auth import ClientCredentialsAuth
from tap_analytics.errors import InvalidStateError, SyncIncompleteError, SyncInterruptedError
from tap_analytics.output import LockedWriter
from tap_analytics.pacing import PacedThreads
from tap_analytics.progress import Progress
from tap_analytics.retry import RetryPolicy
from tap_analytics.run import RunContext
from tap_analytics.state import BadBookmarkError, later_than_now, parse_instant, read_state_file
from tap_analytics.sync import AnalyticsStream
from tap_analytics.throttle import Throttle

if t.TYPE_CHECKING:
    from types import FrameType

    import click
    from singer_sdk.helpers.capabilities import CapabilitiesEnum
    from singer_sdk.plugin_base import _ConfigInput

    from tap_analytics.resources import Resource


STOP_GRACE = 2.0  # seconds an interrupted run waits for its streams' last checkpoints
SAMPLE_RECORDS = 200  # records read to infer a schema for a resource that declares none
UNKNOWN_VERSION = "[could not be detected]"  # as the SDK says it


def package_version(name: str) -> str:
    """An installed distribution's version, read from its METADATA headers."""
    # importlib.metadata's `version` parses the whole METADATA (the README too) with the email
    # package, which it imports first: twice a run, a tenth of start-up, for one header.
    try:
        text = metadata.distribution(name).read_text("METADATA") or ""
    except metadata.PackageNotFoundError:
        return UNKNOWN_VERSION
    for line in text.partition("\n\n")[0].splitlines():
        if line.startswith("Version:"):
            return line.removeprefix("Version:").strip()
    return UNKNOWN_VERSION


class TapAnalytics(Tap):
    """Singer tap for the Analytics API v1."""

    name = "tap-analytics"
    package_name = "tap-analytics"
    config_jsonschema = settings.CONFIG_JSONSCHEMA
    message_writer_class = LockedWriter
    capabilities: t.ClassVar[list[CapabilitiesEnum]] = [
        TapCapabilities.CATALOG,
        TapCapabilities.DISCOVER,
        TapCapabilities.STATE,
        TapCapabilities.ACTIVATE_VERSION,
        PluginCapabilities.ABOUT,
        PluginCapabilities.STREAM_MAPS,
        PluginCapabilities.FLATTENING,
        PluginCapabilities.STRUCTURED_LOGGING,
    ]  # no BATCH: batch files would bypass the bookmark and checkpoint path

    @classmethod
    @override
    def get_plugin_version(cls) -> str:
        return package_version(cls.package_name)

    @classmethod
    @override
    def get_sdk_version(cls) -> str:
        return package_version("singer-sdk")

    @override
    def _validate_config(self, *, raise_errors: bool = True) -> list[str]:
        # The first hook that sees the settings: hide the secret before anything is printed.
        redact.install()
        redact.hide(self._config.get("client_secret"))
        redact.hide(((self._config.get("client") or {}).get("auth") or {}).get("client_secret"))
        # Adds to the SDK's check (which covers its built-in settings too): clear names,
        # the `client` block, defaults and resource declarations.
        errors = settings.validate(self._config, self.config_jsonschema)
        if raise_errors:  # a sync or --test: discovery, which the SDK validates loosely,
            # serves the built-in resources offline and needs no credentials.
            errors += settings.missing_for_sync(self._config)
        try:
            super()._validate_config(raise_errors=True)
        except ConfigValidationError as sdk:
            errors += [
                settings.worded_sdk_error(error)
                for error in sdk.errors
                if not settings.already_reported(error, errors)
            ]
        try:
            errors += self._declaration_errors()
        except resources.DeclarationError as exc:
            errors.append(str(exc))
        if errors and raise_errors:
            summary = "Invalid settings: " + "; ".join(errors)
            raise ConfigValidationError(summary, errors=errors)
        # Before any request (discovery may sample the API): a METRIC line per request and
        # per stream is for machines, and drowns the progress lines a person reads.
        if not self._config.get("log_metrics"):
            self.metrics_logger.setLevel(logging.WARNING)
        for error in errors:
            self.logger.warning(error)
        # The SDK reads batch_config whatever the capabilities say, so it is a known name too.
        known = {*self.config_jsonschema["properties"], *BATCH_CONFIG["properties"]}
        for warning in settings.unknown_settings(self._config, known):
            self.logger.warning(warning)
        if later_than_now(self._config.get("start_date")):
            self.logger.warning(
                "Setting 'start_date' is %s, later than now: streams without a bookmark read "
                "nothing until records are updated after it",
                self._config["start_date"],
            )
        return errors

    def _declaration_errors(self) -> list[str]:
        """Check the resource declarations, before any request."""
        errors = []
        for resource in self.resources:
            initial_value = resource.incremental and resource.incremental.initial_value
            if initial_value is not None:
                what = f"The initial_value declared for resource '{resource.name}'"
                try:
                    parse_instant(initial_value, what=what)
                except BadBookmarkError as exc:
                    errors.append(str(exc))
        return errors

    @cached_property
    def resources(self) -> list[Resource]:
        """Every resource this run serves: the built-ins and the declared ones."""
        return resources.declare(
            self._config.get("resource_defaults"),
            self._config.get("resources"),
            # settings.validate has filled in the defaults by now.
            {key: self._config[key] for key in ("page_size", "max_retries", "backoff_factor")},
        )

    @cached_property
    def run(self) -> RunContext:
        """What every stream of this run shares: one token, one throttle, one writer."""
        auth = ClientCredentialsAuth(
            token_url=self.config.get("token_url", ""),
            client_id=self.config.get("client_id", ""),
            client_secret=self.config.get("client_secret", ""),
            scope=self.config.get("scope"),
            timeout=float(self.config["request_timeout"]),
            retry=RetryPolicy(
                max_retries=self.config["max_retries"],
                backoff_factor=self.config["backoff_factor"],
            ),
        )
        throttle = Throttle(concurrency=int(self.config["max_parallel_streams"]))
        return RunContext(auth, throttle, self.writer)

    @property
    def writer(self) -> LockedWriter:
        """The one writer of every message of this run."""
        return t.cast("LockedWriter", self.message_writer)

    @override
    def discover_streams(self) -> list[AnalyticsStream]:
        streams, unsampled = [], {}
        for resource in self.resources:
            schema = resource.schema
            if schema is None:
                try:
                    schema = self._sampled_schema(resource)
                except Exception as exc:  # noqa: BLE001 - reported by resource name below
                    unsampled[resource.name] = exc
                    continue
            streams.append(AnalyticsStream(self, resource, dict(schema), self.run))
        if unsampled:
            names = ", ".join(f"'{name}'" for name in unsampled)
            causes = "; ".join(f"{name}: {exc}" for name, exc in unsampled.items())
            msg = (
                f"resource(s) {names} declare no schema and the API could not be sampled "
                f"({causes}): give each a 'schema', or discover with network and credentials"
            )
            raise resources.DeclarationError(msg)
        return streams

    def _sampled_schema(self, resource: Resource) -> dict[str, t.Any]:
        """Infer a schema from the first pages of a resource that declares none."""
        probe = AnalyticsStream(self, resource, {"type": "object", "properties": {}}, self.run)
        sample = list(itertools.islice(probe.get_records(None), SAMPLE_RECORDS))
        keys = [*resource.primary_key, *([probe.replication_key] if probe.replication_key else [])]
        schema = inference.infer_schema(sample, required=keys)
        self.logger.info(
            "Inferred the schema of resource '%s' from %d sample record(s); declare a "
            "'schema' to make it exact",
            resource.name,
            len(sample),
        )
        return schema

    @override  # type: ignore[misc]  # final in the SDK; this run syncs streams in parallel
    def sync_all(self) -> None:
        self._reset_state_progress_markers()
        self._set_compatible_replication_methods()
        if self.state:
            self._state_writer.write_state(self.state)
        selected = [
            s for s in self.streams.values() if isinstance(s, AnalyticsStream) and s.selected
        ]
        problems = [problem for stream in selected if (problem := stream.check_state())]
        if problems:
            raise InvalidStateError("; ".join(problems))
        self._warn_of_future_bookmarks(selected)
        progress = Progress()
        threads: PacedThreads[AnalyticsStream] = PacedThreads(
            int(self.config["max_parallel_streams"]),
            lambda stream: self._sync_stream(stream, progress),
            progress.tick,
        )
        try:
            failures = threads.run(selected)  # failures are collected; the other streams go on
        except SyncInterruptedError:
            self.run.stop.set()
            threads.join(timeout=STOP_GRACE)  # their last checkpoints, unless a request hangs
            self._state_writer.write_state(self.state)
            self.writer.close()  # a stream still in a request writes nothing after this STATE
            raise
        self.writer.flush()
        for stream in selected:
            stream.log_sync_costs()
        if failures:
            raise SyncIncompleteError(
                self._failure_summary(failures, [stream.name for stream in selected])
            )

    def _warn_of_future_bookmarks(self, streams: list[AnalyticsStream]) -> None:
        """Warn of a bookmark later than now: its stream would read nothing, run after run."""
        for stream in streams:
            bookmark = stream.stream_state.get("replication_key_value")
            if later_than_now(bookmark):
                self.logger.warning(
                    "The bookmark of stream '%s' is %s, later than now: the stream reads "
                    "nothing until records are updated after it; fix or remove it in the state "
                    "if that is not intended",
                    stream.name,
                    bookmark,
                )

    def _sync_stream(self, stream: AnalyticsStream, progress: Progress) -> None:
        """Sync one stream; its failure is reported at the end, not raised at once."""
        # The SDK's loop also calls finalize_state_progress_markers here; the record loop
        # finalizes its own state and writes the last STATE itself.
        if self.run.stop.is_set():
            raise SyncInterruptedError(0)
        with progress.syncing(stream):
            stream.sync()

    @staticmethod
    def _failure_summary(failures: dict[str, BaseException], streams: list[str]) -> str:
        """One line naming every failed stream and its cause, the delivered ones, what to do."""
        streams_by_cause: dict[str, list[str]] = {}
        for name, failure in sorted(failures.items()):
            streams_by_cause.setdefault(str(failure).rstrip(". "), []).append(name)
        causes = "; ".join(
            f"{', '.join(names)}: {cause}" for cause, names in streams_by_cause.items()
        )
        delivered = sorted(name for name in streams if name not in failures)
        outcome = (
            f"Delivered in full: {', '.join(delivered)}"
            if delivered
            else "No stream was delivered in full"
        )
        return (
            f"{len(failures)} stream(s) incomplete ({', '.join(sorted(failures))}). {causes}. "
            f"{outcome}; rerun with the last STATE to resume."
        )

    @classmethod
    @override
    def cb_config(
        cls, ctx: click.Context, param: click.Option, value: tuple[str, ...]
    ) -> _ConfigInput:
        # The SDK would end a missing, empty or non-object file in a traceback.
        for path in value:
            if path != "ENV" and (problem := settings.config_file_problem(path)):
                cls.logger.error("Invalid config: %s", problem)
                ctx.exit(1)
        return super().cb_config(ctx, param, value)

    @classmethod
    def _checked_state_file(cls, state_file: t.IO[str]) -> t.IO[str]:
        """Refuse a state file that cannot be resumed from, with one line, before any request."""
        name = getattr(state_file, "name", "the state file")
        try:
            state, note = read_state_file(state_file.read(), name)
        except InvalidStateError as exc:
            cls.logger.error("Invalid state: %s", exc)  # noqa: TRY400 - one line, no traceback
            sys.exit(1)
        if note:
            cls.logger.info("%s", note)
        return io.StringIO(json.dumps(state))

    @override
    def _handle_termination(self, signum: int, frame: FrameType | None) -> None:
        # A terminal and Meltano may both forward a signal: later ones must not cut the final
        # STATE short, nor change the exit code, not even while the interpreter shuts down
        # (which restores default handlers, but leaves ignored signals ignored).
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        # The SDK exits 0 here, which makes an interrupted run look complete.
        self.run.stop.set()
        raise SyncInterruptedError(signum)

    @classmethod
    @override
    def invoke(cls, *args: t.Any, **kwargs: t.Any) -> None:
        if kwargs.get("state") is not None:
            kwargs["state"] = cls._checked_state_file(kwargs["state"])
        try:
            super().invoke(*args, **kwargs)
            # The process exits next: skip the interpreter's final garbage collection of
            # every object of the run (a quarter of a second here, on every run).
            gc.freeze()
        except ConfigValidationError as exc:
            # The SDK would log each error, then a generic last line; one line says it all.
            cls._exit(1, "%s", exc)
        except InvalidStateError as exc:
            cls._exit(1, "Invalid state: %s", exc)
        except SyncIncompleteError as exc:
            cls._exit(1, "Sync incomplete: %s", exc)
        except SyncInterruptedError as exc:
            cls._exit(
                128 + exc.signum,
                "Sync interrupted by signal %d; the last STATE written marks what was "
                "delivered: rerun with it to resume",
                exc.signum,
            )

    @classmethod
    def _exit(cls, code: int, message: str, *args: object) -> t.NoReturn:
        """Log the verdict as the last line on stderr, without a traceback, and exit."""
        cls.logger.error(message, *args)
        # A stream stuck in a request when the run stopped (a daemon thread) may still finish:
        # nothing it logs may follow the verdict.
        logging.disable()
        sys.exit(code)


if __name__ == "__main__":
    TapAnalytics.cli()
