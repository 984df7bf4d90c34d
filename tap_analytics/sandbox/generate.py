"""Deterministic generation of a whole resource, sorted by (updated_at, id)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from tap_analytics.sandbox import records
from tap_analytics.sandbox.dice import Dice
from tap_analytics.sandbox.instants import MICROS, format_date, format_instant
from tap_analytics.sandbox.records import DAY, Prototype, quoted_token, token
from tap_analytics.sandbox.timeline import updated_instants

RESOURCES = ("customers", "sessions", "events", "campaigns", "resource")
DEFAULT_COUNTS = {"customers": 500, "sessions": 500, "events": 500, "campaigns": 100}
DEFAULT_COUNTS["resource"] = 500
ID_PREFIXES = {"customers": "cus", "sessions": "ses", "events": "evt", "campaigns": "cmp"}
ID_PREFIXES["resource"] = "res"
POOL_SIZE = 1021
MAX_AGE = {"sessions": DAY // 2, "events": DAY // 24}
DEFAULT_MAX_AGE = 120 * DAY


@dataclass
class GeneratedResource:
    """Records of one resource in API order: parallel lists of instants, ids and JSON bodies."""

    updated: list[int]
    ids: list[str]
    bodies: list[bytes]


@dataclass(frozen=True)
class Slot:
    """What one record needs to be filled in from its prototype."""

    prototype: Prototype
    number: int
    origin: int
    updated: int


Filler = Callable[[Slot, bytes, Dice, dict[str, int]], bytes]
ID_TOKEN, ORIGIN_TOKEN, UPDATED_TOKEN = (
    token(records.ID),
    token(records.ORIGIN),
    token(records.UPDATED),
)
ENDED_TOKEN, NUMBER_TOKEN = token(records.ENDED), token(records.NUMBER)
STARTS_TOKEN, ENDS_TOKEN = token(records.STARTS), token(records.ENDS)
CUSTOMER_VALUE, SESSION_VALUE = quoted_token(records.CUSTOMER), quoted_token(records.SESSION)


def origin_age(resource: str, dice: Dice) -> int:
    """Return how long before its updated_at a record was created (mostly whole seconds)."""
    if dice.chance(0.1):
        return 0
    age = dice.below(MAX_AGE.get(resource, DEFAULT_MAX_AGE))
    return age if dice.chance(0.1) else age - age % MICROS


def customer_of_session(session_number: int, customer_count: int) -> str | None:
    """Return the customer a session belongs to, shared by sessions and events."""
    if customer_count == 0 or session_number % 5 == 0:
        return None
    return f"cus_{(session_number * 7919) % customer_count + 1:06d}"


def json_string_or_null(value: str | None) -> bytes:
    """Encode a plain ASCII string (or None) as a JSON value."""
    return b"null" if value is None else b'"' + value.encode() + b'"'


def fill_common(slot: Slot, record_id: bytes) -> bytes:
    """Fill the id, origin and updated_at placeholders of any record."""
    return (
        slot.prototype.body.replace(ID_TOKEN, record_id)
        .replace(ORIGIN_TOKEN, format_instant(slot.origin).encode())
        .replace(UPDATED_TOKEN, format_instant(slot.updated).encode())
    )


def fill_customer(slot: Slot, record_id: bytes, _dice: Dice, _counts: dict[str, int]) -> bytes:
    """Fill a customer (or `resource`) record."""
    return fill_common(slot, record_id)


def fill_session(slot: Slot, record_id: bytes, _dice: Dice, counts: dict[str, int]) -> bytes:
    """Fill a session: its customer and its end."""
    customer = customer_of_session(slot.number, counts["customers"])
    duration = slot.prototype.duration or 0
    ended = format_instant(slot.origin + duration * MICROS).encode()
    return (
        fill_common(slot, record_id)
        .replace(CUSTOMER_VALUE, json_string_or_null(customer))
        .replace(ENDED_TOKEN, ended)
    )


def fill_event(slot: Slot, record_id: bytes, dice: Dice, counts: dict[str, int]) -> bytes:
    """Fill an event: most belong to a session and to that session's customer."""
    customer_count, session_count = counts["customers"], counts["sessions"]
    session_number = dice.between(1, session_count + 1) if session_count else 0
    session: str | None = None
    customer: str | None = None
    if session_number and dice.chance(0.85):
        session = f"ses_{session_number:06d}"
        customer = customer_of_session(session_number, customer_count)
    elif customer_count and dice.chance(0.5):
        customer = f"cus_{dice.below(customer_count) + 1:06d}"
    return (
        fill_common(slot, record_id)
        .replace(CUSTOMER_VALUE, json_string_or_null(customer))
        .replace(SESSION_VALUE, json_string_or_null(session))
    )


def fill_campaign(slot: Slot, record_id: bytes, _dice: Dice, _counts: dict[str, int]) -> bytes:
    """Fill a campaign: its number in the name and its start and end dates."""
    starts = slot.origin + slot.prototype.start_offset_days * DAY
    ends = starts + (slot.prototype.run_days or 0) * DAY
    return (
        fill_common(slot, record_id)
        .replace(NUMBER_TOKEN, f"{slot.number:06d}".encode())
        .replace(STARTS_TOKEN, format_date(starts).encode())
        .replace(ENDS_TOKEN, format_date(ends).encode())
    )


BUILDERS: dict[str, tuple[Callable[[Dice], Prototype], Filler]] = {
    "customers": (records.customer, fill_customer),
    "sessions": (records.session, fill_session),
    "events": (records.event, fill_event),
    "campaigns": (records.campaign, fill_campaign),
    "resource": (records.customer, fill_customer),
}


def creation_numbers(origins: list[int]) -> list[int]:
    """Number records 1..n in the order they were created (their origin instant)."""
    numbers = [0] * len(origins)
    for rank, position in enumerate(sorted(range(len(origins)), key=origins.__getitem__), 1):
        numbers[position] = rank
    return numbers


def generate_resource(resource: str, seed: int, counts: dict[str, int]) -> GeneratedResource:
    """Generate every record of `resource` deterministically from `seed`."""
    dice = Dice(f"{seed}:{resource}")
    count = counts[resource]
    build_prototype, fill = BUILDERS[resource]
    pool = [build_prototype(dice) for _ in range(min(POOL_SIZE, count))]
    updated = updated_instants(count, dice)
    chosen = [pool[dice.below(len(pool))] for _ in range(count)]
    origins = [
        moment - (prototype.duration or 0) * MICROS - origin_age(resource, dice)
        for moment, prototype in zip(updated, chosen, strict=True)
    ]
    numbers = creation_numbers(origins)
    prefix = ID_PREFIXES[resource]
    built = []
    for position in range(count):
        record_id = f"{prefix}_{numbers[position]:06d}"
        slot = Slot(chosen[position], numbers[position], origins[position], updated[position])
        built.append((updated[position], record_id, fill(slot, record_id.encode(), dice, counts)))
    built.sort(key=lambda item: (item[0], item[1]))
    return GeneratedResource(
        updated=[item[0] for item in built],
        ids=[item[1] for item in built],
        bodies=[item[2] for item in built],
    )


def new_record(
    resource: str, seed: int, counts: dict[str, int], number: int, updated: int
) -> bytes:
    """A record created at `updated` and numbered `number`; the same for the same seed."""
    dice = Dice(f"{seed}:{resource}:new:{number}")
    build_prototype, fill = BUILDERS[resource]
    prototype = build_prototype(dice)
    origin = updated - (prototype.duration or 0) * MICROS  # a session that just ended
    record_id = f"{ID_PREFIXES[resource]}_{number:06d}"
    return fill(Slot(prototype, number, origin, updated), record_id.encode(), dice, counts)
