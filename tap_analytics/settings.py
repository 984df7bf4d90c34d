"""The tap's settings: their JSON Schema, the `client` alternative, and clear errors."""

from __future__ import annotations

import typing as t
from datetime import datetime
from decimal import Decimal

import jsonschema
from singer_sdk import typing as th

from tap_analytics.evolution import MODES
from tap_analytics.state import parse_instant

DEFAULT_PAGE_SIZE = 100
DEFAULT_MAX_RETRIES = 3
DEFAULT_BACKOFF_FACTOR = 2.0
DEFAULT_REQUEST_TIMEOUT = 300.0
DEFAULT_MAX_PARALLEL_STREAMS = 4
TOKEN_PATH = "/oauth/v1/token"  # noqa: S105 - a URL path, not a secret

CONFIG_JSONSCHEMA: dict[str, t.Any] = th.PropertiesList(
    th.Property(
        "client_id",
        th.StringType(min_length=1),
        required=True,
        title="Client ID",
        description="OAuth2 client id.",
    ),
    th.Property(
        "client_secret",
        th.StringType(min_length=1),
        required=True,
        secret=True,
        title="Client secret",
        description="OAuth2 client secret.",
    ),
    th.Property(
        "base_url",
        th.StringType(pattern=r"^https?://[^\s/]+"),
        required=True,
        title="Base URL",
        description="Root of the API, e.g. https://api.example.com.",
    ),
    th.Property(
        "token_url",
        th.StringType(pattern=r"^https?://[^\s/]+"),
        title="Token URL",
        description=f"OAuth2 token endpoint. Default: {{base_url}}{TOKEN_PATH}.",
    ),
    th.Property(
        "scope",
        th.StringType,
        title="Scope",
        description="OAuth2 scopes to request, space separated.",
    ),
    th.Property(
        "start_date",
        th.DateTimeType,
        title="Start date",
        description="First run only: extract records updated at or after this instant.",
    ),
    th.Property(
        "page_size",
        th.IntegerType(minimum=1, maximum=100),
        default=DEFAULT_PAGE_SIZE,
        title="Page size",
        description="Records per request (`limit`), 1 to 100.",
    ),
    th.Property(
        "request_timeout",
        th.NumberType(exclusive_minimum=0),
        default=DEFAULT_REQUEST_TIMEOUT,
        title="Request timeout",
        description="Seconds to wait for a response before retrying.",
    ),
    th.Property(
        "max_retries",
        th.IntegerType(minimum=0),
        default=DEFAULT_MAX_RETRIES,
        title="Max retries",
        description="Retries of a failed request (429, 5xx, timeouts, dropped connections).",
    ),
    th.Property(
        "backoff_factor",
        th.NumberType(minimum=0),
        default=DEFAULT_BACKOFF_FACTOR,
        title="Backoff factor",
        description="Retry n waits backoff_factor * 2**(n-1) seconds unless Retry-After says.",
    ),
    th.Property(
        "max_parallel_streams",
        th.IntegerType(minimum=1, maximum=32),
        default=DEFAULT_MAX_PARALLEL_STREAMS,
        title="Max parallel streams",
        description="Streams synced at once; 1 syncs them one after another.",
    ),
    th.Property(
        "client",
        th.ObjectType(
            th.Property("base_url", th.StringType),
            th.Property(
                "auth",
                th.ObjectType(
                    th.Property("type", th.StringType, allowed_values=["oauth2"]),
                    th.Property("client_id", th.StringType),
                    th.Property("client_secret", th.StringType, secret=True),
                    th.Property("token_url", th.StringType),
                    th.Property("scope", th.StringType),
                    additional_properties=False,
                ),
            ),
            additional_properties=False,
        ),
        title="Client (rest_api form)",
        description="dlt rest_api-style client block; an alternative to the flat settings.",
    ),
    th.Property(
        "resources",
        th.ArrayType(th.ObjectType()),
        title="Resources",
        description="dlt rest_api-style resource declarations, each becoming a stream.",
    ),
    th.Property(
        "resource_defaults",
        th.ObjectType(),
        title="Resource defaults",
        description="Defaults merged into every declared resource.",
    ),
    th.Property(
        "schema_evolution",
        th.StringType,
        allowed_values=list(MODES),
        default="evolve",
        title="Schema evolution",
        description=(
            "A record field the schema lacks: 'evolve' adds it (type inferred, nullable; a new "
            "SCHEMA goes first), 'freeze' stops the stream, 'discard' drops it. A known field "
            "with a value of another type is logged, and stops the stream under 'freeze'."
        ),
    ),
    th.Property(
        "end_date",
        th.DateTimeType,
        title="End date",
        description=(
            "Exclusive end of the incremental window: records updated at or after this instant "
            "are left to a window that starts there, and a stream stops reading at the first."
        ),
    ),
).to_dict()

# Where a key of the rest_api `client` block lands among the flat settings.
_CLIENT_KEYS = {
    ("base_url",): "base_url",
    ("auth", "client_id"): "client_id",
    ("auth", "client_secret"): "client_secret",
    ("auth", "token_url"): "token_url",
    ("auth", "scope"): "scope",
}


def fold_client_block(config: dict[str, t.Any]) -> list[str]:
    """Copy the `client` block into the flat settings; return conflicts as errors."""
    client = config.get("client")
    if not isinstance(client, dict):
        return []
    errors = []
    for path, flat in _CLIENT_KEYS.items():
        value: t.Any = client
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        if value is None:
            continue
        if config.get(flat) not in {None, value}:
            where = "client." + ".".join(path)
            secret = flat == "client_secret"
            shown = "" if secret else f" ({config[flat]!r} vs {value!r})"
            errors.append(f"Settings '{flat}' and '{where}' disagree{shown}: set only one")
            continue
        config[flat] = value
    return errors


def _setting_name(error: jsonschema.ValidationError) -> str:
    """Return the dotted name of the setting a validation error is about."""
    path = [str(part) for part in error.absolute_path]
    if error.validator == "required" and error.message.startswith("'"):
        path.append(error.message.split("'")[1])
    return ".".join(path) or "config"


def _describe(error: jsonschema.ValidationError, schema: dict[str, t.Any]) -> str:
    """Say what is wrong with one setting, without echoing secret values."""
    name = _setting_name(error)
    if error.validator == "required":
        return f"Setting '{name}' is required"
    secret = bool(schema.get("properties", {}).get(name, {}).get("secret"))
    if secret or "secret" in name:
        return f"Setting '{name}' is invalid ({error.validator} {error.validator_value!r})"
    return f"Setting '{name}' is invalid: {error.message}"


def _is_datetime(value: object) -> bool:
    """Tell whether a value is an RFC 3339 date-time (date-only is refused)."""
    if not isinstance(value, str) or "T" not in value.upper():
        return False
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return False
    return True


def _window_errors(config: dict[str, t.Any]) -> list[str]:
    """Check end_date like start_date, and that it comes after start_date."""
    end, start = config.get("end_date"), config.get("start_date")
    if end is None:
        return []
    if not _is_datetime(end):
        return [
            (
                f"Setting 'end_date' is invalid: {end!r} is not an RFC 3339 date-time such as "
                "2025-01-01T00:00:00Z"
            )
        ]
    if _is_datetime(start) and parse_instant(end, what="end_date") <= parse_instant(
        start, what="start_date"
    ):
        return [f"Setting 'end_date' ({end}) must be later than 'start_date' ({start})"]
    return []


def _plain_numbers(value: t.Any) -> t.Any:  # noqa: ANN401 - any JSON value
    """Turn the Decimals the SDK's config reader makes into floats, recursively."""
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, dict):
        return {key: _plain_numbers(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain_numbers(item) for item in value]
    return value


def validate(config: dict[str, t.Any], schema: dict[str, t.Any]) -> list[str]:
    """Validate settings, filling defaults; return one clear line per problem."""
    config.update(_plain_numbers(config))
    errors = fold_client_block(config)
    validator = jsonschema.Draft7Validator(schema)
    errors += [_describe(e, schema) for e in validator.iter_errors(config)]
    if "start_date" in config and not _is_datetime(config["start_date"]):
        errors.append(
            f"Setting 'start_date' is invalid: {config['start_date']!r} is not an RFC 3339 "
            "date-time such as 2024-01-01T00:00:00Z"
        )
    errors += _window_errors(config)
    for name, spec in schema.get("properties", {}).items():
        if "default" in spec and config.get(name) is None:
            config[name] = spec["default"]
    if config.get("base_url") and not config.get("token_url"):
        config["token_url"] = str(config["base_url"]).rstrip("/") + TOKEN_PATH
    return sorted(set(errors), key=errors.index)


def already_reported(sdk_error: str, errors: list[str]) -> bool:
    """Tell whether one of our errors already names the setting an SDK error is about."""
    name = sdk_error.split("in config[", 1)[-1] if "in config[" in sdk_error else sdk_error
    setting = name.split("'")[1] if name.count("'") >= 2 else name  # noqa: PLR2004 - 'quoted'
    return any(f"'{setting}'" in error for error in errors)
