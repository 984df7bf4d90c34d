"""The records of one resource in API order, with keyset lookup, updates and additions."""

from __future__ import annotations

import json
from bisect import bisect_left, bisect_right
from typing import TYPE_CHECKING, Any

from tap_analytics.sandbox.instants import MICROS, format_instant, parse_instant
from tap_analytics.sandbox.records import encode
from tap_analytics.sandbox.timeline import YEAR_START

if TYPE_CHECKING:
    from tap_analytics.sandbox.generate import GeneratedResource

UPDATE_STEPS = (MICROS, MICROS + 250_000, 2 * MICROS, MICROS // 2)
Record = dict[str, Any]


class ResourceStore:
    """Parallel lists (updated_at instant, id, JSON body), sorted by (updated_at, id)."""

    def __init__(self, resource: str, generated: GeneratedResource) -> None:
        """Take ownership of a freshly generated resource."""
        self.resource = resource
        self.updated = generated.updated
        self.ids = generated.ids
        self.bodies = generated.bodies
        self.update_count = 0

    def __len__(self) -> int:
        """Return the number of records."""
        return len(self.ids)

    def position_after(self, updated: int, record_id: str) -> int:
        """Return the index of the first record strictly after (updated, record_id)."""
        low = bisect_left(self.updated, updated)
        high = bisect_right(self.updated, updated, low)
        return bisect_right(self.ids, record_id, low, high)

    def position_since(self, since: int) -> int:
        """Return the index of the first record with updated_at >= since."""
        return bisect_left(self.updated, since)

    def ids_spread(self, count: int) -> list[str]:
        """Return `count` ids spread evenly over the current order."""
        total = len(self.ids)
        count = min(count, total)
        return [self.ids[(2 * index + 1) * total // (2 * count)] for index in range(count)]

    def update(self, record_ids: list[str], not_before: int | None = None) -> list[Record]:
        """Give each record a new latest updated_at (after `not_before`) and a changed field."""
        known = set(self.ids)
        missing = [record_id for record_id in record_ids if record_id not in known]
        if missing:
            msg = f"unknown ids in {self.resource}: {missing}"
            raise KeyError(msg)
        updated_records = []
        for record_id in dict.fromkeys(record_ids):
            record = json.loads(self.bodies[self.ids.index(record_id)])
            record["updated_at"] = format_instant(self.latest_instant(not_before))
            change_visible_field(record, self.update_count + 1)
            self.move_to_end(record)
            updated_records.append(record)
        return updated_records

    def latest_instant(self, not_before: int | None = None) -> int:
        """An updated_at later than every record's (and than `not_before`), by a varied step."""
        step = UPDATE_STEPS[(self.update_count + 1) % len(UPDATE_STEPS)]
        last = self.updated[-1] if self.updated else YEAR_START
        return (last if not_before is None else max(last, not_before)) + step

    def move_to_end(self, record: Record) -> None:
        """Put a new record, or the updated version of one, after every other record."""
        if record["id"] in self.ids:
            index = self.ids.index(record["id"])
            del self.updated[index], self.ids[index], self.bodies[index]
        self.updated.append(parse_instant(record["updated_at"]))
        self.ids.append(record["id"])
        self.bodies.append(encode(record))
        self.update_count += 1


def change_visible_field(record: Record, number: int) -> None:
    """Change a field a client would notice, in a way that depends on the resource."""
    if "email" in record:  # customers and resource
        record["name"] = f"Updated Name {number}"
    elif "channel" in record:  # campaigns
        record["name"] = f"Updated Campaign {number}"
        record["status"] = "completed" if record["status"] != "completed" else "active"
    elif "event_type" in record:  # events
        record["event_type"] = "refund" if record["event_type"] != "refund" else "purchase"
    else:  # sessions
        record["page_view_count"] += 1
