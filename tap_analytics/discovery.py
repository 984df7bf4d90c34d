"""The streams of a run: one per resource, with a schema declared or sampled from the API."""

from __future__ import annotations

import itertools
import typing as t

from tap_analytics import inference
from tap_analytics.resources import DeclarationError
from tap_analytics.sync import AnalyticsStream

if t.TYPE_CHECKING:
    from singer_sdk import Tap

    from tap_analytics.resources import Resource
    from tap_analytics.run import RunContext

SAMPLE_RECORDS = 200  # records read to infer a schema for a resource that declares none


def discovered_streams(
    tap: Tap, declared: list[Resource], run: RunContext
) -> list[AnalyticsStream]:
    """A stream per resource; refuse, naming them all, the resources that cannot be sampled."""
    streams, unsampled = [], {}
    for resource in declared:
        schema = resource.schema
        if schema is None:
            try:
                schema = sampled_schema(tap, resource, run)
            except Exception as exc:  # noqa: BLE001 - reported by resource name below
                unsampled[resource.name] = exc
                continue
        streams.append(AnalyticsStream(tap, resource, dict(schema), run))
    if unsampled:
        names = ", ".join(f"'{name}'" for name in unsampled)
        causes = "; ".join(f"{name}: {exc}" for name, exc in unsampled.items())
        msg = (
            f"resource(s) {names} declare no schema and the API could not be sampled "
            f"({causes}): give each a 'schema', or discover with network and credentials"
        )
        raise DeclarationError(msg)
    return streams


def sampled_schema(tap: Tap, resource: Resource, run: RunContext) -> dict[str, t.Any]:
    """Infer a schema from the first pages of a resource that declares none."""
    probe = AnalyticsStream(tap, resource, {"type": "object", "properties": {}}, run)
    sample = list(itertools.islice(probe.get_records(None), SAMPLE_RECORDS))
    keys = [*resource.primary_key, *([probe.replication_key] if probe.replication_key else [])]
    schema = inference.infer_schema(sample, required=keys)
    tap.logger.info(
        "Inferred the schema of resource '%s' from %d sample record(s); declare a "
        "'schema' to make it exact",
        resource.name,
        len(sample),
    )
    return schema
