"""JSON Schemas inferred from sample records, for declared resources that bring none."""

from __future__ import annotations

import typing as t
from datetime import date, datetime
from decimal import Decimal

_JSON_TYPES: dict[type, str] = {
    bool: "boolean",
    int: "integer",
    float: "number",
    Decimal: "number",  # how the tap decodes a number with a fraction or an exponent
    str: "string",
    list: "array",
    dict: "object",
}


def _string_format(value: str) -> str | None:
    """Recognise RFC 3339 date-times and plain dates."""
    if len(value) == len("2024-01-01"):
        try:
            date.fromisoformat(value)
        except ValueError:
            return None
        return "date"
    if "T" in value and len(value) >= len("2024-01-01T00:00:00Z"):
        try:
            datetime.fromisoformat(value)
        except ValueError:
            return None
        return "date-time"
    return None


def _describe(value: object) -> dict[str, t.Any]:
    """A schema for one value."""
    if value is None:
        return {"type": ["null"]}
    kind = _JSON_TYPES.get(type(value), "string")
    schema: dict[str, t.Any] = {"type": [kind]}
    if isinstance(value, str) and (fmt := _string_format(value)):
        schema["format"] = fmt
    elif isinstance(value, dict):
        schema["properties"] = {key: _describe(item) for key, item in value.items()}
    elif isinstance(value, list):
        items: dict[str, t.Any] = {}
        for item in value:
            items = _widen(items, _describe(item)) if items else _describe(item)
        if items:
            schema["items"] = items
    return schema


def _widen(left: dict[str, t.Any], right: dict[str, t.Any]) -> dict[str, t.Any]:
    """The narrowest schema that accepts what either schema accepts."""
    types = list(dict.fromkeys([*left.get("type", []), *right.get("type", [])]))
    if "integer" in types and "number" in types:
        types.remove("integer")
    merged: dict[str, t.Any] = {"type": types}
    formats = {side.get("format") for side in (left, right) if side.get("type") != ["null"]}
    if len(formats) == 1 and None not in formats:
        merged["format"] = formats.pop()  # every non-null sample had this format
    if "properties" in left or "properties" in right:
        names = dict.fromkeys([*left.get("properties", {}), *right.get("properties", {})])
        merged["properties"] = {
            name: _widen(
                left.get("properties", {}).get(name, {"type": ["null"]}),
                right.get("properties", {}).get(name, {"type": ["null"]}),
            )
            for name in names
        }
    if "items" in left or "items" in right:
        merged["items"] = _widen(left.get("items", {}), right.get("items", {}))
    return merged


def _nullable(schema: dict[str, t.Any]) -> dict[str, t.Any]:
    """Allow null everywhere: a sample cannot prove a field is never null."""
    result = dict(schema)
    types = [kind for kind in result.get("type", []) if kind != "null"] or ["string"]
    result["type"] = [*types, "null"]
    if "properties" in result:
        result["properties"] = {k: _nullable(v) for k, v in result["properties"].items()}
    if "items" in result:
        result["items"] = _nullable(result["items"])
    return result


def infer_schema(
    records: list[dict[str, t.Any]], *, required: t.Iterable[str] = ()
) -> dict[str, t.Any]:
    """Infer an object schema from sample records; key fields stay non-null."""
    merged: dict[str, t.Any] = {"type": ["object"], "properties": {}}
    for record in records:
        merged = _widen(merged, _describe(record))
    schema = _nullable(merged)
    schema["type"] = "object"
    for name in required:
        if name in schema["properties"]:
            kinds = [k for k in schema["properties"][name]["type"] if k != "null"]
            schema["properties"][name]["type"] = kinds[0] if len(kinds) == 1 else kinds
    return schema
