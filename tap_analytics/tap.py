"""The tap: settings, the stream list, and a run that syncs streams in parallel."""

from __future__ import annotations

import gc
import io
import itertools
import json
import logging
import sys
import typing as t
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from functools import cached_property

from singer_sdk import Tap
from singer_sdk.exceptions import ConfigValidationError
from singer_sdk.helpers.capabilities import PluginCapabilities, TapCapabilities
from typing_extensions import override

from tap_analytics import inference, resources, settings
from tap_analytics.auth import ClientCredentialsAuth
from tap_analytics.errors import InvalidStateError, SyncIncompleteError, SyncInterruptedError
from tap_analytics.output import LockedWriter
from tap_analytics.progress import Progress
from tap_analytics.retry import RetryPolicy
from tap_analytics.run import RunContext
from tap_analytics.sync import AnalyticsStream
from tap_analytics.throttle import Throttle

if t.TYPE_CHECKING:
    from types import FrameType

    from singer_sdk.helpers.capabilities import CapabilitiesEnum

    from tap_analytics.resources import Resource


SAMPLE_RECORDS = 200  # records read to infer a schema for a resource that declares none


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

    @override
    def _validate_config(self, *, raise_errors: bool = True) -> list[str]:
        # Adds to the SDK's check (which covers its built-in settings too): clear names,
        # the `client` block, defaults and resource declarations.
        errors = settings.validate(self._config, self.config_jsonschema)
        if raise_errors:  # a sync or --test: discovery, which the SDK validates loosely,
            # serves the built-in resources offline and needs no credentials.
            errors += settings.missing_for_sync(self._config)
        try:  # raising: without, the SDK logs a warning line of its own
            super()._validate_config(raise_errors=True)
        except ConfigValidationError as sdk_check:
            errors += [e for e in sdk_check.errors if not settings.already_reported(e, errors)]
        try:
            self.resources  # noqa: B018 - declarations are checked here, before any request
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
        failures: dict[str, BaseException] = {}
        workers = min(int(self.config["max_parallel_streams"]), max(len(selected), 1))
        pool = ThreadPoolExecutor(workers, thread_name_prefix="stream")
        progress = Progress()
        futures = {
            pool.submit(self._sync_stream, stream, progress): stream.name for stream in selected
        }
        try:
            pending = set(futures)
            while pending:  # collect failures as they happen; the other streams go on
                done, pending = wait(pending, timeout=0.5, return_when=FIRST_EXCEPTION)
                progress.tick()
                for future in done:
                    if (failure := future.exception()) is not None:
                        failures[futures[future]] = failure
        except SyncInterruptedError:
            self.run.stop.set()
            pool.shutdown(wait=True, cancel_futures=True)
            self._state_writer.write_state(self.state)
            self.writer.flush()
            raise
        pool.shutdown(wait=True)
        self.writer.flush()
        for stream in selected:
            stream.log_sync_costs()
        if failures:
            raise SyncIncompleteError(self._failure_summary(failures))

    def _sync_stream(self, stream: AnalyticsStream, progress: Progress) -> None:
        """Sync one stream; its failure is reported at the end, not raised at once."""
        # The SDK's loop also calls finalize_state_progress_markers here; the record loop
        # finalizes its own state and writes the last STATE itself.
        if self.run.stop.is_set():
            raise SyncInterruptedError(0)
        with progress.syncing(stream):
            stream.sync()

    @staticmethod
    def _failure_summary(failures: dict[str, BaseException]) -> str:
        """One line naming every failed stream, its cause, and what to do."""
        streams_by_cause: dict[str, list[str]] = {}
        for name, failure in sorted(failures.items()):
            streams_by_cause.setdefault(str(failure), []).append(name)
        causes = "; ".join(
            f"{', '.join(names)}: {cause}" for cause, names in streams_by_cause.items()
        )
        return (
            f"{len(failures)} stream(s) incomplete ({', '.join(sorted(failures))}). {causes}. "
            "The other streams were delivered; rerun with the last STATE to resume."
        )

    @classmethod
    def _checked_state_file(cls, state_file: t.IO[str]) -> t.IO[str]:
        """Refuse a state file that is not a JSON object, with one line, before any request."""
        text = state_file.read()
        name = getattr(state_file, "name", "state file")
        try:
            state = json.loads(text) if text.strip() else {}
        except json.JSONDecodeError as exc:
            cls.logger.error(  # noqa: TRY400 - one line, no traceback
                "Invalid state: %s is not valid JSON (%s). Fix it, or remove --state to "
                "start from start_date.",
                name,
                exc,
            )
            sys.exit(1)
        if not isinstance(state, dict) or not isinstance(state.get("bookmarks", {}), dict):
            cls.logger.error(
                "Invalid state: %s must be a JSON object with a 'bookmarks' object.", name
            )
            sys.exit(1)
        return io.StringIO(text)

    @override
    def _handle_termination(self, signum: int, frame: FrameType | None) -> None:
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
            cls.logger.error("%s", exc)  # noqa: TRY400 - no traceback wanted
            sys.exit(1)
        except InvalidStateError as exc:
            cls.logger.error("Invalid state: %s", exc)  # noqa: TRY400 - no traceback wanted
            sys.exit(1)
        except SyncIncompleteError as exc:
            cls.logger.error("Sync incomplete: %s", exc)  # noqa: TRY400 - the line says it all
            sys.exit(1)
        except SyncInterruptedError as exc:
            cls.logger.error(  # noqa: TRY400
                "Sync interrupted by signal %d; the last STATE written marks what was "
                "delivered: rerun with it to resume",
                exc.signum,
            )
            sys.exit(128 + exc.signum)


if __name__ == "__main__":
    TapAnalytics.cli()
