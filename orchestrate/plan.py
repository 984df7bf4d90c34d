"""The backfill's windows of `updated_at`: BACKFILL_START, BACKFILL_END, BACKFILL_WINDOWS."""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass
from datetime import UTC, datetime

KEY_FORMAT = "%Y%m%dT%H%M%SZ"
DATE_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
# The bundled sandbox's data spans 2024; its windows end where docs/windows.md's do.
SANDBOX_START, SANDBOX_END = "2024-01-01T00:00:00Z", "2024-10-01T00:00:00Z"
DEFAULT_WINDOWS, DEFAULT_CONCURRENCY = 3, 2


class PlanError(ValueError):
    """A BACKFILL_* variable that does not describe a backfill."""


@dataclass(frozen=True)
class Window:
    """One partition: `start <= updated_at < end`, loaded under its own Meltano state id."""

    start: datetime
    end: datetime

    @property
    def key(self) -> str:
        """The partition key: both bounds, so a changed plan never reuses another's state."""
        return f"{self.start:{KEY_FORMAT}}-{self.end:{KEY_FORMAT}}"

    @property
    def state_id(self) -> str:
        """The Meltano state id of the window's `meltano el` job."""
        return f"backfill-{self.key}"

    def env(self) -> dict[str, str]:
        """The extractor settings that bound the window."""
        return {
            "TAP_ANALYTICS_START_DATE": f"{self.start:{DATE_FORMAT}}",
            "TAP_ANALYTICS_END_DATE": f"{self.end:{DATE_FORMAT}}",
        }


@dataclass(frozen=True)
class Plan:
    """The windows of the backfill, how many run at once, and where the schedule starts."""

    windows: tuple[Window, ...]
    concurrency: int

    @property
    def schedule_start(self) -> datetime:
        """T: the end of the last window, where `meltano run` takes over."""
        return self.windows[-1].end

    def window(self, key: str) -> Window:
        """The window of a partition key."""
        (found,) = (window for window in self.windows if window.key == key)
        return found


def parse_date(name: str, value: str) -> datetime:
    """An RFC 3339 date-time of a BACKFILL_* variable, in UTC."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        msg = f"{name}={value!r} is not a date-time: use e.g. {SANDBOX_START}"
        raise PlanError(msg) from None
    if parsed.tzinfo is None:
        msg = f"{name}={value!r} has no time zone: end it with Z (UTC)"
        raise PlanError(msg)
    return parsed.astimezone(UTC)


def parse_count(name: str, value: str) -> int:
    """A positive count of a BACKFILL_* variable."""
    if not value.isdigit() or int(value) < 1:
        msg = f"{name}={value!r} is not a positive whole number"
        raise PlanError(msg)
    return int(value)


def plan_from_env(env: dict[str, str] | None = None) -> Plan:
    """The plan the BACKFILL_* variables describe (the sandbox's year by default)."""
    env = dict(os.environ if env is None else env)
    start = parse_date("BACKFILL_START", env.get("BACKFILL_START") or SANDBOX_START)
    end = parse_date("BACKFILL_END", env.get("BACKFILL_END") or SANDBOX_END)
    count = parse_count("BACKFILL_WINDOWS", env.get("BACKFILL_WINDOWS") or str(DEFAULT_WINDOWS))
    concurrency = parse_count(
        "BACKFILL_CONCURRENCY", env.get("BACKFILL_CONCURRENCY") or str(DEFAULT_CONCURRENCY)
    )
    if end <= start:
        msg = f"BACKFILL_END ({end:{DATE_FORMAT}}) must be later than BACKFILL_START"
        raise PlanError(msg)
    if (end - start).total_seconds() < count:
        msg = f"BACKFILL_WINDOWS={count} makes windows shorter than a second: use fewer"
        raise PlanError(msg)
    step = (end - start) / count
    inner = [(start + step * index).replace(microsecond=0) for index in range(1, count)]
    bounds = [start, *inner, end]
    windows = tuple(Window(a, b) for a, b in itertools.pairwise(bounds))
    return Plan(windows, concurrency)
