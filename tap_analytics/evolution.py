"""Schema contracts: what a stream does with new fields and with values of unexpected types."""

from __future__ import annotations

import itertools
import typing as t
from dataclasses import dataclass
from decimal import Decimal

from tap_analytics.inference import infer_schema

if t.TYPE_CHECKING:
    import logging
    from collections.abc import Callable, Mapping

Mode = t.Literal["evolve", "freeze", "discard"]
MODES: tuple[Mode, ...] = ("evolve", "freeze", "discard")
# dlt's names for the same modes, as a resource's `schema_contract` spells them.
DLT_MODES: dict[str, Mode] = {"evolve": "evolve", "freeze": "freeze", "discard_value": "discard"}
CONTRACT_JSONSCHEMA: dict[str, t.Any] = {
    "oneOf": [
        {"enum": list(DLT_MODES)},
        {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "columns": {"enum": list(DLT_MODES)},
                "data_type": {"enum": ["evolve", "freeze"]},
            },
        },
    ]
}
_PYTHON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float, Decimal),  # decoded numbers with a fraction are Decimals
    "boolean": (bool,),
    "null": (type(None),),
    "array": (list,),
    "object": (dict,),
}


class SchemaContractError(Exception):
    """A record broke a frozen schema: the message names the stream and the field."""


@dataclass(frozen=True)
class Contract:
    """What to do with a new top-level field (`columns`) and an unexpected type (`data_type`)."""

    columns: Mode = "evolve"
    data_type: Mode = "evolve"

    @classmethod
    def of(cls, declared: str | Mapping[str, str] | None, default: Mode) -> Contract:
        """Read a resource's `schema_contract` (dlt form); unset parts follow `default`."""
        if declared is None:
            return cls(default, default)
        if isinstance(declared, str):
            return cls(DLT_MODES[declared], DLT_MODES[declared])
        columns = DLT_MODES[declared["columns"]] if "columns" in declared else default
        data_type = DLT_MODES[declared["data_type"]] if "data_type" in declared else default
        return cls(columns, data_type)


def allowed_types(schema: Mapping[str, t.Any]) -> tuple[type, ...] | None:
    """Python types of the JSON values a property schema allows; None when any may do."""
    kinds = schema.get("type")
    if kinds is None:
        branches = [*schema.get("anyOf", []), *schema.get("oneOf", [])]
        found = [allowed_types(branch) for branch in branches if isinstance(branch, dict)]
        if not found or None in found:
            return None
        return tuple(dict.fromkeys(kind for types in found if types for kind in types))
    names = [kinds] if isinstance(kinds, str) else list(kinds)
    if any(name not in _PYTHON_TYPES for name in names):
        return None
    return tuple(dict.fromkeys(kind for name in names for kind in _PYTHON_TYPES[name]))


def describe(schema: Mapping[str, t.Any]) -> str:
    """A property schema's type in words: `string (date-time) or null`."""
    kinds = schema.get("type", [])
    names = [kinds] if isinstance(kinds, str) else list(kinds)
    if "format" in schema:
        names = [f"{name} ({schema['format']})" if name == "string" else name for name in names]
    return " or ".join(names) or "any type"


_JSON_NAMES = {bool: "boolean", int: "integer", float: "number", Decimal: "number", str: "string"}
_JSON_NAMES |= {list: "array", dict: "object", type(None): "null"}
_ABSENT = object()  # stands for a field a record does not carry: its type, `object`, passes


def _passing(types: Mapping[str, tuple[type, ...]]) -> dict[str, frozenset[type]]:
    """The types each typed field passes with, `object` (absent) included."""
    return {name: frozenset({*kinds, object}) for name, kinds in types.items()}


def _json_name(value: object) -> str:
    """Name a decoded value's type as JSON does."""
    return _JSON_NAMES.get(type(value), type(value).__name__)


class SchemaGuard:
    """One stream's contract for one run; every finding is logged once."""

    def __init__(
        self, stream: str, contract: Contract, schema: Mapping[str, t.Any], logger: logging.Logger
    ) -> None:
        """Watch records against the top-level properties of `schema`."""
        self.stream = stream
        self.contract = contract
        self.logger = logger
        self.names: frozenset[str] = frozenset(schema.get("properties", {}))
        self.types = {
            name: kinds
            for name, spec in schema.get("properties", {}).items()
            if (kinds := allowed_types(spec)) is not None
        }
        self._reported: set[tuple[str, str]] = set()
        self._passing = _passing(self.types)

    def first_refused(
        self, records: list[dict[str, t.Any]]
    ) -> tuple[int, SchemaContractError | None]:
        """How many records precede one whose type is refused, and why (all checked if frozen)."""
        if self.contract.data_type != "freeze":
            if records:  # a sample a page, as documented: a type change that lasts is seen
                self._log_types(records[0])
            return len(records), None
        bad = len(records)
        absent = itertools.repeat(_ABSENT)
        for name, passing in self._passing.items():  # a column at a time, in passes of `map`
            column = map(dict.get, records[:bad], itertools.repeat(name), absent)
            if not passing.issuperset(map(type, column)):
                column = map(dict.get, records[:bad], itertools.repeat(name), absent)
                bad = next(i for i, value in enumerate(column) if type(value) not in passing)
        if bad == len(records):
            return bad, None
        name, value = next(
            (name, value)
            for name, value in records[bad].items()
            if name in self.types and type(value) not in self.types[name]
        )
        message = self._type_message(records[bad], name, value)
        return bad, SchemaContractError(
            f"{message}; the schema contract is 'freeze': fix the schema and rerun"
        )

    def _log_types(self, record: Mapping[str, t.Any]) -> None:
        """Log (once per field and type) values of known fields that the schema does not allow."""
        for name, value in record.items():
            allowed = self.types.get(name)
            if allowed is not None and type(value) not in allowed:
                message = self._type_message(record, name, value)
                if self._once("type", f"{name}:{_json_name(value)}"):
                    self.logger.warning("%s", message)

    def _type_message(self, record: Mapping[str, t.Any], name: str, value: object) -> str:
        """Name the stream, the field, the seen and the allowed types, and the record's id."""
        expected = " or ".join(dict.fromkeys(_JSON_NAMES[kind] for kind in self.types[name]))
        return (
            f"stream '{self.stream}': field '{name}' has a {_json_name(value)} value where the "
            f"schema allows {expected} (id {record.get('id')!r})"
        )

    def unknown_fields(
        self, record: Mapping[str, t.Any], deselected: Callable[[str], bool]
    ) -> tuple[dict[str, dict[str, t.Any]], set[str]]:
        """Split a record's unknown top-level fields into ones to add (with a schema) and drop."""
        unknown = [name for name in record if name not in self.names]
        if self.contract.columns == "freeze":
            for name in unknown:
                if not deselected(name):
                    msg = (
                        f"stream '{self.stream}': the API sent field '{name}', which the schema "
                        "does not have, and the schema contract is 'freeze'; add the field to "
                        "the schema (or set schema_evolution to 'evolve' or 'discard') and rerun"
                    )
                    raise SchemaContractError(msg)
        dropped = {name for name in unknown if deselected(name)}
        for name in sorted(dropped):
            if self._once("deselected", name):
                self.logger.info(
                    "stream '%s': new field '%s' is deselected in the catalog; not written",
                    self.stream,
                    name,
                )
        fresh = [name for name in unknown if name not in dropped]
        if self.contract.columns == "discard":
            for name in fresh:
                if self._once("discarded", name):
                    self.logger.warning(
                        "stream '%s': field '%s' is not in the schema; dropped "
                        "(schema contract 'discard')",
                        self.stream,
                        name,
                    )
            return {}, {*dropped, *fresh}
        # A null says nothing about the type: the field waits for its first value.
        waiting = {name for name in fresh if record[name] is None}
        sample = {name: record[name] for name in fresh if name not in waiting}
        added: dict[str, dict[str, t.Any]] = infer_schema([sample])["properties"] if sample else {}
        for name, spec in added.items():
            self.logger.info(
                "stream '%s': new field '%s' (%s) added to the schema",
                self.stream,
                name,
                describe(spec),
            )
        return added, {*dropped, *waiting}

    def learn(self, added: Mapping[str, Mapping[str, t.Any]]) -> None:
        """Take fields added to the schema as known from now on."""
        self.names |= added.keys()
        for name, spec in added.items():
            if (kinds := allowed_types(spec)) is not None:
                self.types[name] = kinds
        self._passing = _passing(self.types)

    def _once(self, kind: str, what: str) -> bool:
        """Tell whether a finding is new to this run, and remember it."""
        if (kind, what) in self._reported:
            return False
        self._reported.add((kind, what))
        return True


def widened(schema: Mapping[str, t.Any], added: Mapping[str, t.Any]) -> dict[str, t.Any]:
    """A copy of an object schema with more top-level properties."""
    return {**schema, "properties": {**schema.get("properties", {}), **added}}
