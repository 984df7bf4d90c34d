"""The tap: its settings, its streams, and the SDK's hooks, each handed to its own module."""

from __future__ import annotations

import gc
import logging
import signal
import typing as t
from functools import cached_property

from singer_sdk import Tap
from singer_sdk.exceptions import ConfigValidationError
from singer_sdk.helpers.capabilities import BATCH_CONFIG, PluginCapabilities, TapCapabilities
from typing_extensions import override

from tap_analytics import discovery, exits, inputs, resources, settings, settings_check, sync_all
from tap_analytics.auth import ClientCredentialsAuth
from tap_analytics.errors import SyncInterruptedError
from tap_analytics.output import LockedWriter
from tap_analytics.retry import RetryPolicy
from tap_analytics.run import CpuMeter, RequestSlots, RunContext
from tap_analytics.throttle import Throttle
from tap_analytics.version import package_version

if t.TYPE_CHECKING:
    from pathlib import PurePath
    from types import FrameType

    import click
    from singer_sdk.helpers.capabilities import CapabilitiesEnum
    from singer_sdk.plugin_base import _ConfigInput
    from singer_sdk.singerlib import Catalog

    from tap_analytics.resources import Resource
    from tap_analytics.sync import AnalyticsStream


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
    def __init__(
        self, *, catalog: PurePath | str | dict[str, t.Any] | Catalog | None = None, **kwargs: t.Any
    ) -> None:
        # The SDK parses the catalog here, and drops what it does not know of its metadata.
        if isinstance(catalog, dict):
            catalog = inputs.with_chosen_replication(catalog)
        super().__init__(catalog=catalog, **kwargs)

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
        settings_check.hide_secrets(self._config)
        # The run reads a checked copy: the caller's dict stays as it was passed.
        self._config, errors = settings_check.checked(
            self._config,
            self.config_jsonschema,
            for_sync=raise_errors,  # discovery, which the SDK validates loosely, needs no secret
        )
        try:  # the SDK's check covers its built-in settings too
            super()._validate_config(raise_errors=True)
        except ConfigValidationError as sdk:
            errors += settings_check.sdk_errors(sdk.errors, errors)
        errors += settings_check.declaration_errors(lambda: self.resources)
        if errors and raise_errors:
            raise ConfigValidationError("Invalid settings: " + "; ".join(errors), errors=errors)
        # Before any request (discovery may sample the API): a METRIC line per request and
        # per stream is for machines, and drowns the progress lines a person reads.
        if not self._config.get("log_metrics"):
            self.metrics_logger.setLevel(logging.WARNING)
        # The SDK reads batch_config whatever the capabilities say, so it is a known name too.
        known = {*self.config_jsonschema["properties"], *BATCH_CONFIG["properties"]}
        for line in [*errors, *settings_check.warnings(self._config, known)]:
            self.logger.warning("%s", line)
        return errors

    @cached_property
    def resources(self) -> list[Resource]:
        """Every resource this run serves: the built-ins and the declared ones."""
        return resources.declare(
            self._config.get("resource_defaults"),
            self._config.get("resources"),
            # The checked settings have their defaults filled in.
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
        requests = int(self.config.get("max_parallel_requests") or 1)
        slots = RequestSlots(requests, CpuMeter().busy)
        return RunContext(auth, Throttle(), self.writer, slots)

    @property
    def writer(self) -> LockedWriter:
        """The one writer of every message of this run."""
        return t.cast("LockedWriter", self.message_writer)

    @override
    def discover_streams(self) -> list[AnalyticsStream]:
        return discovery.discovered_streams(self, self.resources, self.run)

    @override  # type: ignore[misc]  # final in the SDK; this run syncs streams in parallel
    def sync_all(self) -> None:
        self._reset_state_progress_markers()
        sync_all.sync_selected(self, self.run, int(self.config["max_parallel_streams"]))

    @classmethod
    @override
    def cb_config(
        cls, ctx: click.Context, param: click.Option, value: tuple[str, ...]
    ) -> _ConfigInput:
        # The SDK would end a missing, empty or non-object file in a traceback.
        for path in value:
            if path != "ENV" and (problem := inputs.config_file_problem(path)):
                cls.logger.error("Invalid config: %s", problem)
                ctx.exit(1)
        return super().cb_config(ctx, param, value)

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
        with exits.verdict(cls.logger):
            # Both files are read and checked before any request.
            if kwargs.get("state") is not None:
                kwargs["state"] = inputs.checked_state_file(kwargs["state"], cls.logger)
            if kwargs.get("catalog") is not None:
                kwargs["catalog"] = inputs.checked_catalog_file(kwargs["catalog"])
            super().invoke(*args, **kwargs)
            # The process exits next: skip the interpreter's final garbage collection of
            # every object of the run (a quarter of a second here, on every run).
            gc.freeze()


if __name__ == "__main__":
    TapAnalytics.cli()
