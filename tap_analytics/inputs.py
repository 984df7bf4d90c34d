"""The files a run is given (--config, --state, --catalog): capped, checked, refused in a line."""

from __future__ import annotations

import io
import json
import typing as t
from pathlib import Path

from tap_analytics.errors import InvalidCatalogError, InvalidStateError, json_type
from tap_analytics.state import read_state_file

if t.TYPE_CHECKING:
    import logging

MAX_FILE_MB = 64  # MiB of a config, state or catalog file; more is refused (/dev/zero never ends)
_MAX_FILE_BYTES = MAX_FILE_MB * 2**20
# Members of a catalog's stream entry the SDK reads, and the JSON type each must have.
_ENTRY_MEMBERS: dict[str, tuple[type, str]] = {
    "schema": (dict, "an object"),
    "metadata": (list, "a list"),
    "key_properties": (list, "a list"),
    "replication_key": (str, "a string"),
    "replication_method": (str, "a string"),
}


def capped_text(file: t.IO[str], name: str) -> str:
    """A file's text, refused with ValueError when larger than MAX_FILE_MB MiB or not UTF-8."""
    # Bytes, not characters: 64 Mi characters of four bytes each would be 256 MiB.
    data = t.cast("io.BufferedReader", t.cast("io.TextIOWrapper", file).buffer).read(
        _MAX_FILE_BYTES + 1
    )
    if len(data) > _MAX_FILE_BYTES:
        msg = f"{name} is larger than {MAX_FILE_MB} MiB, the most the tap reads"
        raise ValueError(msg)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        msg = f"{name} is not UTF-8 text ({exc.reason} at byte {exc.start})"
        raise ValueError(msg) from None


def config_file_problem(path: str) -> str | None:
    """Say what keeps a --config file from being an object of settings, if anything."""
    try:
        text = _config_text(path)
    except ValueError as exc:
        return str(exc)
    if not text.strip():
        return f"config file {path} is empty: it must hold a JSON object of settings"
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        return f"config file {path} is not valid JSON ({exc})"
    if not isinstance(document, dict):
        return f"config file {path} holds a JSON {json_type(document)}, not an object of settings"
    return None


def _config_text(path: str) -> str:
    """A --config file's text; ValueError saying why it cannot be read."""
    try:
        with Path(path).open(encoding="utf-8") as file:
            return capped_text(file, f"config file {path}")
    except FileNotFoundError:
        msg = f"config file {path} was not found"
    except OSError as exc:
        msg = f"config file {path} cannot be read ({exc})"
    raise ValueError(msg)


def _given_text(file: t.IO[str], name: str, error: type[Exception], remedy: str) -> str:
    """A --state or --catalog file's text; `error` naming the file, the problem and `remedy`."""
    try:
        return capped_text(file, name)
    except ValueError as exc:
        msg = f"{exc}: {remedy}"
        raise error(msg) from None


def checked_state_file(state_file: t.IO[str], logger: logging.Logger) -> t.IO[str]:
    """The state a --state file holds, as a file; InvalidStateError if it cannot be resumed."""
    name = getattr(state_file, "name", "the state file")
    remedy = "give the tap its last STATE, or remove --state to start from start_date"
    text = _given_text(state_file, name, InvalidStateError, remedy)
    state, note = read_state_file(text, name)
    if note:
        logger.info("%s", note)
    return io.StringIO(json.dumps(state))


def checked_catalog_file(catalog_file: t.IO[str]) -> t.IO[str]:
    """The catalog a --catalog file holds, as a file; InvalidCatalogError if it cannot be used."""
    name = getattr(catalog_file, "name", "the catalog file")
    remedy = "write one with --discover, or remove --catalog to sync every stream"
    text = _given_text(catalog_file, name, InvalidCatalogError, remedy)
    if not text.strip():
        msg = f"{name} is empty: {remedy}"
        raise InvalidCatalogError(msg)
    try:
        document = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        msg = f"{name} is not valid JSON ({exc}): {remedy}"
        raise InvalidCatalogError(msg) from None
    if problem := catalog_problem(document):
        msg = f"{name} is not a Singer catalog: {problem}; {remedy}"
        raise InvalidCatalogError(msg)
    return io.StringIO(text)


def catalog_problem(document: object) -> str | None:
    """Say how a decoded catalog differs from {"streams": [{"tap_stream_id": ..., ...}]}."""
    if not isinstance(document, dict):
        return f"it is a JSON {json_type(document)}, not an object with a 'streams' list"
    if "streams" not in document:
        return "it has no 'streams' list"
    streams = document["streams"]
    if not isinstance(streams, list):
        return f"its 'streams' is a JSON {json_type(streams)}, not a list"
    for index, entry in enumerate(streams):
        if problem := _entry_problem(entry, f"streams[{index}]"):
            return problem
    return None


def _entry_problem(entry: object, where: str) -> str | None:
    """Say what keeps a catalog's stream entry from being read, if anything."""
    if not isinstance(entry, dict):
        return f"{where} is a JSON {json_type(entry)}, not a stream object"
    stream = entry.get("tap_stream_id")
    if not isinstance(stream, str) or not stream:
        return f"{where} has no 'tap_stream_id' string"
    where = f"stream '{stream}'"
    for member, (kind, expected) in _ENTRY_MEMBERS.items():
        value = entry.get(member)
        if value is not None and not isinstance(value, kind):
            return f"the '{member}' of {where} is a JSON {json_type(value)}, not {expected}"
    for item in entry.get("metadata") or []:
        breadcrumb = item.get("breadcrumb") if isinstance(item, dict) else None
        valid_crumb = isinstance(breadcrumb, list) and all(isinstance(p, str) for p in breadcrumb)
        if not valid_crumb or not isinstance(item.get("metadata"), dict):
            return (
                f"a 'metadata' item of {where} is not "
                '{"breadcrumb": [names...], "metadata": {...}}: '
                f"{json.dumps(item)[:80]}"
            )
    return None


def with_chosen_replication(catalog: dict[str, t.Any]) -> dict[str, t.Any]:
    """A copy of a catalog where a replication method chosen in a stream's metadata is heeded.

    Meltano's `metadata` extra writes a choice as `replication-method` (or
    `forced-replication-method`) in the stream's metadata, while the entry's `replication_method`
    is still what discovery wrote, and the SDK reads the entry's first (and never
    `replication-method`): the metadata's choice becomes the entry's `replication_method`.
    """
    streams = catalog.get("streams")
    if not isinstance(streams, list):
        return catalog  # refused by catalog_problem, or left to the SDK
    chosen = []
    for entry in streams:
        metadata = _stream_metadata(entry)
        method = metadata.get("replication-method") or metadata.get("forced-replication-method")
        if method and isinstance(entry, dict):
            entry = {**entry, "replication_method": method}  # noqa: PLW2901 - a copy of it
        chosen.append(entry)
    return {**catalog, "streams": chosen}


def _stream_metadata(entry: object) -> dict[str, t.Any]:
    """The stream-level metadata (breadcrumb []) of a catalog entry, or {}."""
    items = entry.get("metadata") if isinstance(entry, dict) else None
    for item in items if isinstance(items, list) else []:
        if isinstance(item, dict) and item.get("breadcrumb") == []:
            metadata = item.get("metadata")
            return metadata if isinstance(metadata, dict) else {}
    return {}
