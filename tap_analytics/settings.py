"""The tap's settings: their JSON Schema, the `client` alternative, and clear errors."""

from __future__ import annotations

import difflib
import ipaddress
import typing as t
from decimal import Decimal
from urllib.parse import urlsplit

import jsonschema
from singer_sdk import typing as th

from tap_analytics.evolution import MODES
from tap_analytics.state import BadBookmarkError, parse_instant

if t.TYPE_CHECKING:
    from collections.abc import Iterable

DEFAULT_PAGE_SIZE = 100
DEFAULT_MAX_RETRIES = 3
DEFAULT_BACKOFF_FACTOR = 2.0
DEFAULT_REQUEST_TIMEOUT = 30.0
MAX_REQUEST_TIMEOUT = 86400  # a day; far larger overflows the clocks a request's deadline uses
DEFAULT_MAX_PARALLEL_STREAMS = 4
DEFAULT_MAX_PARALLEL_REQUESTS = 1  # slices off by default: see docs/performance.md
TOKEN_PATH = "/oauth/v1/token"  # noqa: S105 - a URL path, not a secret
SYNC_SETTINGS = ("client_id", "client_secret", "base_url")  # discovery needs none of them

CONFIG_JSONSCHEMA: dict[str, t.Any] = th.PropertiesList(
    th.Property(
        "client_id",
        th.StringType(min_length=1),
        title="Client ID",
        description="OAuth2 client id; required to sync.",
    ),
    th.Property(
        "client_secret",
        th.StringType(min_length=1),
        secret=True,
        title="Client secret",
        description="OAuth2 client secret; required to sync.",
    ),
    th.Property(
        "base_url",
        th.StringType(pattern=r"^https?://[^\s/]+"),
        title="Base URL",
        description="Root of the API, e.g. https://api.example.com; required to sync.",
    ),
    th.Property(
        "allow_insecure_http",
        th.BooleanType,
        default=False,
        title="Allow insecure HTTP",
        description=(
            "Allow an http:// base_url or token_url to a host other than this machine, which "
            "sends the client secret and tokens unencrypted."
        ),
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
        th.NumberType(exclusive_minimum=0, maximum=MAX_REQUEST_TIMEOUT),
        default=DEFAULT_REQUEST_TIMEOUT,
        title="Request timeout",
        description=(
            "Seconds a request may take, to the last byte of its answer, before it fails and is "
            "retried. The default, 30, lets a server that stops answering fail a stream within 5 "
            "minutes (4 attempts, their backoff, a hanging token request)."
        ),
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
        description="Most streams synced at once, more only while they wait on the API.",
    ),
    th.Property(
        "max_parallel_requests",
        th.IntegerType(minimum=1, maximum=64),
        default=DEFAULT_MAX_PARALLEL_REQUESTS,
        title="Max parallel requests",
        description=(
            "Requests in flight in a run: each running stream has one, and slices fill the rest."
        ),
    ),
    th.Property(
        "log_metrics",
        th.BooleanType,
        default=False,
        title="Log metrics",
        description=(
            "Also log the SDK's METRIC lines at INFO (without them, stderr shows progress "
            "and a summary per stream)."
        ),
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


def _insecure_url(url: object) -> bool:
    """Tell whether a URL is plain http:// to a host other than this machine."""
    parts = urlsplit(str(url))
    if parts.scheme.lower() != "http":
        return False
    host = (parts.hostname or "").rstrip(".")
    if host == "localhost":
        return False
    try:
        return not ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name
        return True


def _window_errors(config: dict[str, t.Any]) -> list[str]:
    """Check end_date like start_date, and that it comes after start_date."""
    end, start = config.get("end_date"), config.get("start_date")
    if end is None:
        return []
    try:
        end_at = parse_instant(end, what="Setting 'end_date'")
        start_at = None if start is None else parse_instant(start, what="Setting 'start_date'")
    except BadBookmarkError as exc:
        return [str(exc)] if "'end_date'" in str(exc) else []  # start_date's is reported apart
    if start_at is not None and end_at <= start_at:
        return [f"Setting 'end_date' ({end}) must be later than 'start_date' ({start})"]
    return []


def _plain_numbers(value: t.Any) -> t.Any:  # noqa: ANN401 - any JSON value
    """A copy with the Decimals the SDK's config reader makes turned into floats."""
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, t.Mapping):
        return {key: _plain_numbers(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain_numbers(item) for item in value]
    return value


def validated(
    settings: t.Mapping[str, t.Any], schema: dict[str, t.Any]
) -> tuple[dict[str, t.Any], list[str]]:
    """Settings as a run reads them (defaults filled) and one clear line per problem.

    The settings passed in are left as they are: the result is a copy.
    """
    # null is not set, as Meltano passes it (the SDK's mapper fails on it)
    config = {name: value for name, value in _plain_numbers(settings).items() if value is not None}
    errors = fold_client_block(config)
    validator = jsonschema.Draft7Validator(schema)
    errors += [_describe(e, schema) for e in validator.iter_errors(config)]
    if "start_date" in config:
        try:
            parse_instant(config["start_date"], what="Setting 'start_date'")
        except BadBookmarkError as exc:
            errors.append(str(exc))
    errors += _window_errors(config)
    for name, spec in schema.get("properties", {}).items():
        if "default" in spec and config.get(name) is None:
            config[name] = spec["default"]
    explicit_token_url = config.get("token_url")
    if config.get("base_url") and not explicit_token_url:
        config["token_url"] = str(config["base_url"]).rstrip("/") + TOKEN_PATH
    for name in ("base_url", "token_url") if explicit_token_url else ("base_url",):
        if not config["allow_insecure_http"] and _insecure_url(config.get(name)):
            errors.append(
                f"Setting '{name}' is refused: {config[name]} is plain HTTP to another host, "
                "which would send the client secret and access tokens unencrypted; use "
                "https://, or set allow_insecure_http to true"
            )
    return config, sorted(set(errors), key=errors.index)


def missing_for_sync(config: dict[str, t.Any]) -> list[str]:
    """Name each setting a sync needs that the (validated) config lacks."""
    return [
        f"Setting '{name}' is required to sync"
        for name in SYNC_SETTINGS
        if config.get(name) is None
    ]


def unknown_settings(config: t.Mapping[str, t.Any], known: Iterable[str]) -> list[str]:
    """Warn of each setting the tap does not know, with the closest known name."""
    names = sorted(known)
    warnings = []
    for name in sorted(set(config) - set(names)):
        guess = difflib.get_close_matches(name, names, n=1)
        hint = f" (did you mean '{guess[0]}'?)" if guess else ""
        warnings.append(f"Setting '{name}' is unknown{hint}: it is ignored")
    return warnings


def worded_sdk_error(error: str) -> str:
    """Word an error of the SDK's check (`... in config['name']`) as ours are worded."""
    message, found, where = error.partition(" in config[")
    if not found:
        return f"Settings are invalid: {error}"
    name = ".".join(part.strip("'") for part in where.rstrip("]").split("]["))
    return f"Setting '{name}' is invalid: {message}"


def already_reported(sdk_error: str, errors: list[str]) -> bool:
    """Tell whether one of our errors already names the setting an SDK error is about."""
    message, _, path = sdk_error.partition(" in config[")
    if path:  # "... in config['client']['auth']['client_secret']" names client.auth.client_secret
        setting = ".".join(part.strip("'") for part in path.rstrip("]").split("]["))
    else:
        setting = message.split("'")[1] if message.count("'") >= 2 else message  # noqa: PLR2004
    return any(f"'{setting}'" in error for error in errors)
