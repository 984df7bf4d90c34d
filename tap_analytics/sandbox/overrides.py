"""Field overrides: records changed since a moment (or chosen by id) served with a field set."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tap_analytics.sandbox.instants import format_instant, parse_instant
from tap_analytics.sandbox.records import encode, quoted_token

if TYPE_CHECKING:
    from collections.abc import Sequence

# The keyset order rests on these fields: an override by moment would make every page lie.
KEY_FIELDS = frozenset({"id", "updated_at"})
# One record's served updated_at may lie (as a careless API's may); its id never.
ID_ONLY_FIELDS = frozenset({"updated_at"})
OVERRIDE_KEYS = frozenset({"resource", "name", "value", "since", "ids", "raw"})
RAW = "\x01raw"  # placeholder of a raw value until the record is encoded


@dataclass(frozen=True)
class FieldOverride:
    """Serve `name` = `value` on records of `resource` from `since` on, or on `ids` only.

    With `raw`, `value` is JSON text served as it is (a number with more digits than a float).
    """

    resource: str
    name: str
    value: Any
    since: int  # microseconds since the epoch
    ids: frozenset[str] | None = None
    raw: bool = False

    def reaches(self, record_id: str, updated: int) -> bool:
        """Tell whether a record is served with this override."""
        return record_id in self.ids if self.ids is not None else updated >= self.since

    def describe(self) -> dict[str, Any]:
        """Return the override as its JSON object."""
        described = {
            "resource": self.resource,
            "name": self.name,
            "value": self.value,
            "since": format_instant(self.since),
        }
        if self.ids is not None:
            described["ids"] = sorted(self.ids)
        return described | ({"raw": True} if self.raw else {})


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
    ids = _ids(spec.get("ids"))
    name = spec["name"]
    allowed = KEY_FIELDS - (ID_ONLY_FIELDS if ids is not None else set())
    if not isinstance(name, str) or not name or name in allowed:
        msg = f"name must be a field name other than {sorted(allowed)}, not {name!r}"
        raise ValueError(msg)
    if name in ID_ONLY_FIELDS and ids is None:
        msg = f"an override of {name!r} needs `ids`: it would reorder every page"
        raise ValueError(msg)
    raw = spec.get("raw", False)
    if raw is not False:
        _check_raw(raw, spec["value"])
    since = now if spec.get("since") is None else parse_instant(str(spec["since"]))
    return FieldOverride(spec["resource"], name, spec["value"], since, ids, bool(raw))


def _ids(ids: Any) -> frozenset[str] | None:  # noqa: ANN401
    """The record ids an override is limited to, if any."""
    if ids is None:
        return None
    if not isinstance(ids, list) or not all(isinstance(record_id, str) for record_id in ids):
        msg = f"ids is a list of record ids, not {ids!r}"
        raise TypeError(msg)
    return frozenset(ids)


def _check_raw(raw: Any, value: Any) -> None:  # noqa: ANN401
    """Refuse a raw override whose value is not JSON text."""
    if raw is not True or not isinstance(value, str):
        msg = f"a raw override has raw true and a value of JSON text, not {raw!r}, {value!r}"
        raise TypeError(msg)
    json.loads(value)  # a ValueError names what is wrong with it


def served_body(record: dict[str, Any], updated: int, overrides: Sequence[FieldOverride]) -> bytes:
    """Encode a record as served: every override that reaches it applied, raw text spliced in."""
    raws: dict[bytes, bytes] = {}
    for number, override in enumerate(overrides):
        if not override.reaches(record["id"], updated):
            continue
        if override.raw:
            placeholder = f"{RAW}{number}"
            raws[quoted_token(placeholder)] = override.value.encode()
            record[override.name] = placeholder
        else:
            record[override.name] = override.value
    body = encode(record)
    for quoted, text in raws.items():
        body = body.replace(quoted, text)
    return body


def apply_overrides(
    bodies: Sequence[bytes],
    instants: Sequence[int],
    ids: Sequence[str],
    overrides: Sequence[FieldOverride],
) -> list[bytes]:
    """Return encoded records with every override that reaches them applied."""
    if not overrides:
        return list(bodies)
    served = []
    for body, updated, record_id in zip(bodies, instants, ids, strict=True):
        if any(override.reaches(record_id, updated) for override in overrides):
            body = served_body(json.loads(body), updated, overrides)  # noqa: PLW2901 (served)
        served.append(body)
    return served
