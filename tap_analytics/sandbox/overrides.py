"""Field overrides: records changed since a moment are served with a field set to a value."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tap_analytics.sandbox.instants import format_instant, parse_instant
from tap_analytics.sandbox.records import encode

if TYPE_CHECKING:
    from collections.abc import Sequence

# The keyset order rests on these fields: overriding them would make pages lie.
KEY_FIELDS = frozenset({"id", "updated_at"})
OVERRIDE_KEYS = frozenset({"resource", "name", "value", "since"})


@dataclass(frozen=True)
class FieldOverride:
    """Serve `name` = `value` on every record of `resource` with updated_at >= `since`."""

    resource: str
    name: str
    value: Any
    since: int  # microseconds since the epoch

    def describe(self) -> dict[str, Any]:
        """Return the override as its JSON object."""
        return {
            "resource": self.resource,
            "name": self.name,
            "value": self.value,
            "since": format_instant(self.since),
        }


def parse_override(spec: Any, resources: Sequence[str], now: int) -> FieldOverride:  # noqa: ANN401
    """Build an override from its JSON object; `since` defaults to `now`; raise ValueError."""
    if not isinstance(spec, dict):
        msg = f"a field override is a JSON object, not {spec!r}"
        raise TypeError(msg)
    unknown = set(spec) - OVERRIDE_KEYS
    missing = {"resource", "name", "value"} - set(spec)
    if unknown or missing:
        msg = f"field override keys: unknown {sorted(unknown)}, missing {sorted(missing)}"
        raise ValueError(msg)
    if spec["resource"] not in resources:
        msg = f"unknown resource {spec['resource']!r}; known: {', '.join(resources)}"
        raise ValueError(msg)
    name = spec["name"]
    if not isinstance(name, str) or not name or name in KEY_FIELDS:
        msg = f"name must be a field name other than {sorted(KEY_FIELDS)}, not {name!r}"
        raise ValueError(msg)
    since = now if spec.get("since") is None else parse_instant(str(spec["since"]))
    return FieldOverride(spec["resource"], name, spec["value"], since)


def override_record(
    record: dict[str, Any], updated: int, overrides: Sequence[FieldOverride]
) -> None:
    """Set the field of every override whose `since` the record's `updated` reaches."""
    for override in overrides:
        if updated >= override.since:
            record[override.name] = override.value


def apply_overrides(
    bodies: Sequence[bytes], instants: Sequence[int], overrides: Sequence[FieldOverride]
) -> list[bytes]:
    """Return encoded records with every override whose `since` they reach applied."""
    if not overrides:
        return list(bodies)
    earliest = min(override.since for override in overrides)
    served = []
    for body, updated in zip(bodies, instants, strict=True):
        if updated >= earliest:
            record = json.loads(body)
            override_record(record, updated, overrides)
            body = encode(record)  # noqa: PLW2901 (the served version of the same record)
        served.append(body)
    return served
