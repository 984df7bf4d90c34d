"""Record prototypes per resource: contract-shaped JSON with placeholders for per-record values."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tap_analytics.sandbox import vocabulary as words
from tap_analytics.sandbox.instants import MICROS

if TYPE_CHECKING:
    from tap_analytics.sandbox.dice import Dice

Record = dict[str, Any]
DAY = 86_400 * MICROS

# Placeholders, filled per record by the generator; control characters never occur in data.
ID = "\x01id"
NUMBER = "\x01number"
ORIGIN = "\x01origin"
UPDATED = "\x01updated"
ENDED = "\x01ended"
CUSTOMER = "\x01customer"
SESSION = "\x01session"
STARTS = "\x01starts"
ENDS = "\x01ends"


def token(placeholder: str) -> bytes:
    """Return how a placeholder looks inside encoded JSON, without quotes."""
    return json.dumps(placeholder)[1:-1].encode()


def quoted_token(placeholder: str) -> bytes:
    """Return how a placeholder looks as a whole JSON string value, quotes included."""
    return json.dumps(placeholder).encode()


@dataclass(frozen=True)
class Prototype:
    """An encoded record with placeholders, and the time spans its per-record values need."""

    body: bytes
    duration: int | None = None  # sessions: seconds between start and end, None when open
    start_offset_days: int = 0  # campaigns: days from creation to starts_on
    run_days: int | None = None  # campaigns: days from starts_on to ends_on, None when open


def encode(record: Record) -> bytes:
    """Encode one record as compact UTF-8 JSON."""
    return json.dumps(record, separators=(",", ":"), ensure_ascii=False).encode()


def customer(dice: Dice) -> Prototype:
    """Build a customer prototype (also the shape of `resource`)."""
    first, last = dice.pick(words.FIRST_NAMES), dice.pick(words.LAST_NAMES)
    attributes: dict[str, str | int | float | bool] = {
        "tier": dice.pick(("gold", "silver", "bronze")),
        "score": round(dice.random() * 100, 1),
        "beta_user": dice.chance(0.5),
        "seats": dice.between(1, 500),
    }
    record = {
        "id": ID,
        "external_id": dice.maybe(f"ext-{dice.below(10**8):08d}", 0.2),
        "name": dice.maybe(f"{first} {last}", 0.05),
        "email": dice.maybe(f"{first.lower()}.{ID}@example.com"),
        "country_code": dice.maybe(dice.pick(words.COUNTRY_CODES)),
        "plan": dice.maybe(dice.pick(words.PLANS)),
        "lifetime_value": dice.maybe(dice.money(0, 25_000), 0.15),
        "total_events": dice.between(2**31, 2**42) if dice.chance(0.05) else dice.below(10**5),
        "is_active": dice.chance(0.8),
        "tags": dice.subset(words.TAGS[: dice.below(5)]),
        "attributes": {key: attributes[key] for key in dice.subset(tuple(attributes))},
        "created_at": ORIGIN,
        "updated_at": UPDATED,
    }
    return Prototype(encode(record))


def session(dice: Dice) -> Prototype:
    """Build a session prototype; open sessions have no end and no duration."""
    duration = None if dice.chance(0.1) else dice.below(4 * 3600)
    record = {
        "id": ID,
        "customer_id": CUSTOMER,
        "started_at": ORIGIN,
        "ended_at": None if duration is None else ENDED,
        "duration_seconds": duration,
        "device_type": dice.pick(words.DEVICE_TYPES),
        "browser": dice.maybe(dice.pick(words.BROWSERS)),
        "country_code": dice.maybe(dice.pick(words.COUNTRY_CODES)),
        "landing_page": dice.pick(words.LANDING_PAGES),
        "referrer": dice.maybe(dice.pick(words.REFERRERS), 0.3),
        "utm": {
            "source": dice.maybe(dice.pick(words.UTM_SOURCES), 0.4),
            "medium": dice.maybe(dice.pick(words.UTM_MEDIUMS), 0.4),
            "campaign": dice.pick(("spring_sale", "launch", None)),
            "term": dice.maybe("analytics tool", 0.7),
            "content": dice.maybe("banner_a", 0.7),
        },
        "page_view_count": dice.between(1, 60),
        "updated_at": UPDATED,
    }
    return Prototype(encode(record), duration=duration)


def event_properties(dice: Dice, event_type: str) -> dict[str, Any]:
    """Build free-form event properties with nested values of every JSON type."""
    properties: dict[str, Any] = {"path": dice.pick(words.LANDING_PAGES)}
    if event_type in {"purchase", "add_to_cart"}:
        properties["items"] = [
            {"sku": f"SKU-{dice.below(1000):03d}", "qty": dice.between(1, 4), "price": 9.99}
            for _ in range(dice.between(1, 3))
        ]
    if dice.chance(0.3):
        properties["experiment"] = {"name": "checkout_v2", "variant": dice.pick("AB")}
    if dice.chance(0.2):
        properties["flags"] = [dice.chance(0.5), None, dice.below(10), "x", 1.5]
    if dice.chance(0.2):
        properties["note"] = None
    return properties


def event(dice: Dice) -> Prototype:
    """Build an event prototype."""
    event_type = dice.pick(words.EVENT_TYPES)
    paid = event_type == "purchase" and dice.chance(0.9)
    record = {
        "id": ID,
        "customer_id": CUSTOMER,
        "session_id": SESSION,
        "event_type": event_type,
        "occurred_at": ORIGIN,
        "properties": event_properties(dice, event_type),
        "revenue": dice.money(1, 500) if paid else None,
        "currency": dice.pick(words.CURRENCIES) if paid else None,
        "updated_at": UPDATED,
    }
    return Prototype(encode(record))


def campaign(dice: Dice) -> Prototype:
    """Build a campaign prototype; open-ended ones have no end date."""
    has_budget = dice.chance(0.8)
    run_days = dice.maybe(dice.between(1, 90), 0.3)
    record = {
        "id": ID,
        "name": f"{dice.pick(words.CAMPAIGN_WORDS)} {dice.pick(words.CAMPAIGN_WORDS)} {NUMBER}",
        "channel": dice.pick(words.CHANNELS),
        "status": dice.pick(words.CAMPAIGN_STATUSES),
        "budget": dice.money(100, 50_000) if has_budget else None,
        "currency": dice.pick(words.CURRENCIES) if has_budget else None,
        "starts_on": STARTS,
        "ends_on": None if run_days is None else ENDS,
        "created_at": ORIGIN,
        "updated_at": UPDATED,
    }
    return Prototype(encode(record), start_offset_days=dice.below(30), run_days=run_days)
