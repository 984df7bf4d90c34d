"""Fault rules: matched in order per request, each with its own counters."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

TOKEN_PATH = "/oauth/v1/token"  # noqa: S105
DATA_PREFIX = "/v1/"
MIN_STATUS, MAX_STATUS = 100, 599
# Faults that replace or delay the handling of a request, decided when it arrives.
ARRIVAL_KINDS = frozenset(
    {
        "status",
        "drop",
        "slow",
        "revoke",
        "html",
        "garbage",
        "hang",
        "raw",
        "trickle",
        "trickle_head",
    }
)
# Faults that spoil an otherwise successful answer, decided once it is ready.
ANSWER_KINDS = frozenset(
    {
        "empty",
        "no_data",
        "data_not_list",
        "missing_field",
        "repeat_cursor",
        "truncated",
        "paging",
        "rewind",
        "gzip",
        "unsorted",
    }
)
KINDS = ARRIVAL_KINDS | ANSWER_KINDS
FAULT_KEYS = frozenset(
    {
        "kind",
        "path",
        "status",
        "retry_after",
        "times",
        "skip",
        "every",
        "delay",
        "field",
        "headers",
        "body",
        "content_type",
        "paging",
        "size",
    }
)


class InvalidFaultError(ValueError):
    """A fault rule object that does not describe a fault."""


@dataclass
class FaultRule:
    """One rule: which requests it matches, what it does and how often."""

    kind: str
    path: str | None = None
    status: int | None = None  # for status: 503 if not given; for raw: 200
    retry_after: int | None = None
    times: int = 1
    skip: int = 0
    every: int = 0
    delay: float = 2.0
    field: str = "id"
    headers: dict[str, str] | None = None  # for status and raw: extra response headers
    body: str | None = None  # for raw: the body (latin-1, so any byte can be written)
    content_type: str = "application/json"  # for raw
    paging: Any = None  # for paging: the `paging` value served instead
    size: int = 1_048_576  # for gzip: bytes the body inflates to
    matched: int = 0
    fired: int = 0

    def matches(self, path: str) -> bool:
        """Return whether a request to `path` is one this rule is about."""
        if self.path is not None:
            return path == self.path
        return path.startswith(DATA_PREFIX)

    def exhausted(self) -> bool:
        """Return whether the rule has fired as many times as allowed."""
        return self.times >= 0 and self.fired >= self.times

    def consider(self) -> bool:
        """Count a matching request and return whether the rule fires on it."""
        self.matched += 1
        if self.matched <= self.skip:
            return False
        if self.every > 0 and (self.matched - self.skip) % self.every:
            return False
        self.fired += 1
        return True

    def describe(self) -> dict[str, Any]:
        """Return the rule as a JSON object, counters included."""
        return dict(vars(self))


def parse_fault(spec: dict[str, Any]) -> FaultRule:
    """Build a rule from its JSON object; raise InvalidFaultError if it is not valid."""
    if not isinstance(spec, dict) or spec.get("kind") not in KINDS:
        msg = f"a fault needs a kind among {sorted(KINDS)}: {spec!r}"
        raise InvalidFaultError(msg)
    unknown = set(spec) - FAULT_KEYS
    if unknown:
        msg = f"unknown fault keys {sorted(unknown)}"
        raise InvalidFaultError(msg)
    try:
        rule = FaultRule(**spec)
        rule.times, rule.skip, rule.every = int(rule.times), int(rule.skip), int(rule.every)
        rule.status = None if rule.status is None else int(rule.status)
        rule.delay, rule.size = float(rule.delay), int(rule.size)
        rule.content_type = str(rule.content_type)
        headers = rule.headers or {}
        if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
            msg = f"headers is an object of strings, not {rule.headers!r}"
            raise InvalidFaultError(msg)
        if rule.body is not None:
            rule.body.encode("latin-1")  # a UnicodeEncodeError is a ValueError
        rule.retry_after = None if rule.retry_after is None else int(rule.retry_after)
    except (TypeError, ValueError) as error:
        raise InvalidFaultError(str(error)) from error
    if rule.status is not None and not MIN_STATUS <= rule.status <= MAX_STATUS:
        msg = f"status {rule.status} is not an HTTP status"
        raise InvalidFaultError(msg)
    return rule


class FaultBook:
    """The active fault rules, in the order they were added."""

    def __init__(self) -> None:
        """Start without faults."""
        self.rules: list[FaultRule] = []

    def add(self, spec: dict[str, Any]) -> FaultRule:
        """Validate and append a rule."""
        rule = parse_fault(spec)
        self.rules.append(rule)
        return rule

    def clear(self) -> None:
        """Remove every rule."""
        self.rules.clear()

    def fire(self, path: str, kinds: frozenset[str]) -> FaultRule | None:
        """Return the first rule of `kinds` that fires on a request to `path`, if any."""
        for rule in self.rules:
            live = rule.kind in kinds and not rule.exhausted() and rule.matches(path)
            if live and rule.consider():
                return rule
        return None
