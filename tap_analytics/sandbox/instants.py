"""RFC 3339 timestamps as integer microseconds since the Unix epoch."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta

MICROS = 1_000_000
MAX_OFFSET_HOURS, MAX_MINUTE = 23, 59
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?"
    r"(?:([Zz])|([+-])(\d{2}):(\d{2}))",
)


DAY_SECONDS = 86_400
_DAY_NAMES: dict[int, str] = {}


def day_name(day_number: int) -> str:
    """Return YYYY-MM-DD of a day counted from the epoch (cached: formatting is hot)."""
    name = _DAY_NAMES.get(day_number)
    if name is None:
        name = _DAY_NAMES[day_number] = time.strftime(
            "%Y-%m-%d", time.gmtime(day_number * DAY_SECONDS)
        )
    return name


# "HH:MM:SS" of every second of a day, indexed by the second of the day.
CLOCK = [f"{h:02d}:{m:02d}:{s:02d}" for h in range(24) for m in range(60) for s in range(60)]


def format_instant(micros: int) -> str:
    """Format microseconds as RFC 3339 UTC with a fraction only when it is not zero."""
    seconds, fraction = divmod(micros, MICROS)
    day_number, second_of_day = divmod(seconds, DAY_SECONDS)
    day = _DAY_NAMES.get(day_number) or day_name(day_number)
    if fraction:
        return f"{day}T{CLOCK[second_of_day]}.{fraction:06d}".rstrip("0") + "Z"
    return f"{day}T{CLOCK[second_of_day]}Z"


def format_date(micros: int) -> str:
    """Format microseconds as the UTC calendar date YYYY-MM-DD."""
    return day_name(micros // MICROS // DAY_SECONDS)


def instant_of(year: int, month: int, day: int) -> int:
    """Return midnight UTC of a calendar day as microseconds."""
    return (datetime(year, month, day, tzinfo=UTC) - _EPOCH) // timedelta(microseconds=1)


def parse_instant(text: str) -> int:
    """Parse a strict RFC 3339 timestamp into microseconds; raise ValueError if malformed."""
    match = _RFC3339.fullmatch(text)
    if match is None:
        msg = f"not an RFC 3339 timestamp: {text!r}"
        raise ValueError(msg)
    year, month, day, hour, minute, second, fraction, zulu, sign, off_h, off_m = match.groups()
    moment = datetime(  # raises ValueError on impossible dates and times
        int(year), int(month), int(day), int(hour), int(minute), int(second), tzinfo=UTC
    )
    micros = (moment - _EPOCH) // timedelta(microseconds=1)
    if fraction:
        micros += int(fraction[:6].ljust(6, "0"))
    if not zulu:
        offset_minutes = int(off_h) * 60 + int(off_m)
        if int(off_h) > MAX_OFFSET_HOURS or int(off_m) > MAX_MINUTE:
            msg = f"bad UTC offset in {text!r}"
            raise ValueError(msg)
        micros -= (1 if sign == "+" else -1) * offset_minutes * 60 * MICROS
    return micros
