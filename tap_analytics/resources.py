"""Resource declarations in dlt rest_api form: the built-in four and the user's own."""

from __future__ import annotations

import copy
import functools
import json
import typing as t
from dataclasses import dataclass
from importlib import resources as package_files
from pathlib import Path

import click
import jsonschema

from tap_analytics.errors import json_type
from tap_analytics.evolution import CONTRACT_JSONSCHEMA
from tap_analytics.retry import RetryPolicy
from tap_analytics.state import BadBookmarkError, parse_instant

if t.TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

WriteDisposition = t.Literal["merge", "append", "replace"]

_STRINGS = {"type": "array", "items": {"type": "string", "minLength": 1}, "minItems": 1}
_ENDPOINT = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "path": {"type": "string", "pattern": "^/"},
        "params": {
            "type": "object",
            "additionalProperties": {"type": ["string", "number", "boolean"]},
        },
        "data_selector": {"type": "string", "minLength": 1},
        "paginator": {
            "oneOf": [
                {"type": "string", "enum": ["single_page", "cursor"]},
                {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["type"],
                    "properties": {
                        "type": {"enum": ["cursor", "single_page"]},
                        "limit": {"type": "integer", "minimum": 1, "maximum": 100},
                        "cursor_param": {"type": "string", "minLength": 1},
                        "cursor_path": {"type": "string", "minLength": 1},
                    },
                },
            ]
        },
        "error_handler": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "retry_on_status_codes": {
                    "type": "array",
                    "items": {"type": "integer", "minimum": 100, "maximum": 599},
                },
                "max_retries": {"type": "integer", "minimum": 0},
                "backoff_factor": {"type": "number", "minimum": 0},
            },
        },
        "incremental": {
            "type": "object",
            "additionalProperties": False,
            "required": ["cursor_path"],
            "properties": {
                "cursor_path": {"type": "string", "pattern": r"^(\$\.)?[A-Za-z_][A-Za-z0-9_]*$"},
                "start_param": {"type": "string", "minLength": 1},
                "initial_value": {"type": "string"},
                "end_value": {"type": "string"},
            },
        },
    },
}
DECLARATION_JSONSCHEMA: dict[str, t.Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["name", "endpoint"],
    "properties": {
        "name": {"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_]*$"},
        "endpoint": {**_ENDPOINT, "required": ["path"]},
        "primary_key": {"oneOf": [{"type": "string", "minLength": 1}, _STRINGS]},
        "write_disposition": {"enum": ["merge", "append", "replace"]},
        "schema": {"type": ["object", "string"]},
        "schema_contract": CONTRACT_JSONSCHEMA,
    },
}
DEFAULTS_JSONSCHEMA: dict[str, t.Any] = {
    **DECLARATION_JSONSCHEMA,
    "required": [],
    "properties": {
        **DECLARATION_JSONSCHEMA["properties"],
        "endpoint": _ENDPOINT,
    },
}


class DeclarationError(click.ClickException, ValueError):
    """A resource declaration the tap cannot serve; the message names the resource.

    A click error, so that `--discover`, which raises it from an option's callback, ends in
    one line rather than a traceback.
    """


@dataclass(frozen=True)
class Incremental:
    """Where a record's replication value is, and which query parameter filters on it."""

    cursor_path: str
    start_param: str | None
    initial_value: str | None
    end_value: str | None = None  # exclusive upper bound: a window of the replication key


@dataclass(frozen=True)
class Resource:
    """One stream: everything needed to list a resource of the API."""

    name: str
    path: str
    params: Mapping[str, t.Any]
    data_selector: str
    page_size: int | None  # None: a single request, no paging
    cursor_param: str
    cursor_path: str
    retry: RetryPolicy
    primary_key: tuple[str, ...]
    write_disposition: WriteDisposition
    incremental: Incremental | None
    schema: Mapping[str, t.Any] | None
    schema_contract: str | Mapping[str, str] | None = None  # None: the tap's schema_evolution

    @property
    def key_properties(self) -> tuple[str, ...]:
        """Keys a target merges on: none for append-only resources."""
        return () if self.write_disposition == "append" else self.primary_key


def merge(base: Mapping[str, t.Any], override: Mapping[str, t.Any]) -> dict[str, t.Any]:
    """Deep-merge two declarations; the override wins, objects merge key by key."""
    merged = copy.deepcopy(dict(base))
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _check(document: object, schema: dict[str, t.Any], where: str) -> None:
    """Refuse an invalid declaration with the first problem, named by its key path."""
    errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(document), key=lambda e: e.path)
    if errors:
        error = errors[0]
        key = ".".join(str(part) for part in error.absolute_path)
        at = f" at '{key}'" if key else ""
        msg = f"{where}{at}: {error.message}"
        raise DeclarationError(msg)


def _load_schema(value: object, name: str) -> dict[str, t.Any] | None:
    """Return a JSON Schema given inline, as a packaged schema name, or as a file path."""
    if value is None or isinstance(value, dict):
        return value
    packaged = package_files.files("tap_analytics") / "schemas" / str(value)
    try:
        text = packaged.read_text() if packaged.is_file() else Path(str(value)).read_text()
    except OSError as exc:
        msg = f"resource '{name}': cannot read schema file {value!r} ({exc.strerror})"
        raise DeclarationError(msg) from None
    schema: dict[str, t.Any] = resolve_fragments(json.loads(text))
    return schema


def resolve_fragments(schema: t.Any) -> t.Any:  # noqa: ANN401 - any JSON value
    """Inline `{"$ref": "fragments.json#name"}` references to the shared fragments."""
    if isinstance(schema, list):
        return [resolve_fragments(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("fragments.json#"):
        fragment = copy.deepcopy(_fragments()[ref.partition("#")[2]])
        return {**fragment, **{k: v for k, v in schema.items() if k != "$ref"}}
    return {key: resolve_fragments(value) for key, value in schema.items()}


@functools.cache  # read once, not once a reference: each use is a deep copy
def _fragments() -> dict[str, t.Any]:
    """The shared schema fragments."""
    text = (package_files.files("tap_analytics") / "schemas" / "fragments.json").read_text()
    fragments: dict[str, t.Any] = json.loads(text)
    return fragments


def dotted(path: str) -> str:
    """Accept a dotted path or its simple JSONPath spelling (`$.paging.next.after`, `$.data[*]`)."""
    return path.removeprefix("$").removeprefix(".").removesuffix("[*]")


def build(declaration: Mapping[str, t.Any], tap_defaults: Mapping[str, t.Any]) -> Resource:
    """Turn one merged declaration into a Resource, filling in tap-wide settings."""
    name = declaration["name"]
    endpoint = declaration["endpoint"]
    paginator = endpoint.get("paginator", "cursor")
    paginator = {"type": paginator} if isinstance(paginator, str) else paginator
    handler = endpoint.get("error_handler", {})
    retry_kwargs: dict[str, t.Any] = {
        "max_retries": handler.get("max_retries", tap_defaults["max_retries"]),
        "backoff_factor": handler.get("backoff_factor", tap_defaults["backoff_factor"]),
    }
    if "retry_on_status_codes" in handler:
        retry_kwargs["retry_statuses"] = frozenset(handler["retry_on_status_codes"])
    incremental = endpoint.get("incremental")
    disposition = declaration.get("write_disposition", "merge")
    if disposition == "replace" and incremental:
        msg = f"resource '{name}': 'replace' re-reads everything, so it takes no 'incremental'"
        raise DeclarationError(msg)
    primary_key = declaration.get("primary_key", ())
    keys = (primary_key,) if isinstance(primary_key, str) else tuple(primary_key)
    if disposition == "merge" and not keys:
        msg = f"resource '{name}': write_disposition 'merge' needs a primary_key"
        raise DeclarationError(msg)
    return Resource(
        name=name,
        path=endpoint["path"],
        params=dict(endpoint.get("params", {})),
        data_selector=dotted(endpoint.get("data_selector", "data")),
        page_size=(
            None
            if paginator["type"] == "single_page"
            else paginator.get("limit", tap_defaults["page_size"])
        ),
        cursor_param=paginator.get("cursor_param", "after"),
        cursor_path=dotted(paginator.get("cursor_path", "paging.next.after")),
        retry=RetryPolicy(**retry_kwargs),
        primary_key=keys,
        write_disposition=disposition,
        incremental=(
            Incremental(
                cursor_path=dotted(incremental["cursor_path"]),
                start_param=incremental.get("start_param"),
                initial_value=incremental.get("initial_value"),
                end_value=_end_value(incremental, name),
            )
            if incremental
            else None
        ),
        schema=_load_schema(declaration.get("schema"), name),
        schema_contract=declaration.get("schema_contract"),
    )


def _end_value(incremental: Mapping[str, t.Any], name: str) -> str | None:
    """The window's end: an RFC 3339 instant later than the initial value."""
    end = incremental.get("end_value")
    if end is None:
        return None
    try:
        end_instant = parse_instant(end, what=f"resource '{name}': incremental.end_value")
        initial = incremental.get("initial_value")
        if initial is not None and end_instant <= parse_instant(
            initial, what=f"resource '{name}': incremental.initial_value"
        ):
            msg = f"resource '{name}': incremental.end_value must be later than initial_value"
            raise DeclarationError(msg)
    except BadBookmarkError as exc:
        raise DeclarationError(str(exc)) from None
    return str(end)


def builtin_declarations() -> tuple[dict[str, t.Any], list[dict[str, t.Any]]]:
    """The package's own defaults and declarations of the four contract resources."""
    text = (package_files.files("tap_analytics") / "resources.json").read_text()
    document = json.loads(text)
    return document["resource_defaults"], document["resources"]


def declare(
    user_defaults: Mapping[str, t.Any] | None,
    user_resources: Iterable[object] | None,
    tap_defaults: Mapping[str, t.Any],
) -> list[Resource]:
    """All resources of a run: built-ins first, each replaced by a user one of its name."""
    package_defaults, builtins = builtin_declarations()
    _check(user_defaults or {}, DEFAULTS_JSONSCHEMA, "resource_defaults")
    declared = {item["name"]: merge(package_defaults, item) for item in builtins}
    user_base = merge(package_defaults, user_defaults or {})
    seen: set[str] = set()
    if user_resources is not None and not isinstance(user_resources, list):
        msg = (
            f"Setting 'resources' is a JSON {json_type(user_resources)}, not a list: give a "
            "list of resource declarations, one object each"
        )
        raise DeclarationError(msg)
    for index, item in enumerate(user_resources or []):
        label = item.get("name") if isinstance(item, dict) else None
        where = f"resources[{index}]" + (f" ('{label}')" if label else "")
        _check(item, DECLARATION_JSONSCHEMA, where)
        assert isinstance(item, dict)  # noqa: S101 - the schema check proved it
        if item["name"] in seen:
            msg = f"{where}: resource '{item['name']}' is declared twice"
            raise DeclarationError(msg)
        seen.add(item["name"])
        declared[item["name"]] = merge(user_base, item)
    return [build(declaration, tap_defaults) for declaration in declared.values()]
