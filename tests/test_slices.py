"""Slices: ranges split where the records are, every record once, no request past a range's end."""

from __future__ import annotations

import bisect
import itertools
import random
import threading
import time
import typing as t
from datetime import UTC, datetime, timedelta

import pytest

from tap_analytics.pages import Page
from tap_analytics.run import CpuMeter, RequestSlots
from tap_analytics.slices import Slicer
from tap_analytics.state import parse_instant
from tap_analytics.sync_state import Read, spelled

if t.TYPE_CHECKING:
    from collections.abc import Iterator

ORIGIN = datetime(2020, 1, 1, tzinfo=UTC)
YEAR = 365 * 24 * 3600


class FakeAPI:
    """A sorted list of records served a page at a time, with probes, and a log of requests."""

    def __init__(self, seconds: list[float], page_size: int, latency: float = 0.0) -> None:
        """Records at these offsets from ORIGIN, in (updated_at, id) order."""
        self.latency = latency  # of a page; probes answer at once
        instants = sorted(ORIGIN + timedelta(seconds=round(s, 3)) for s in seconds)
        self.records = [
            {"id": f"r{i:06d}", "updated_at": spelled(instant)}
            for i, instant in enumerate(instants)
        ]
        self.instants = instants
        self.page_size = page_size
        self.pages_of: dict[int, list[tuple[datetime, datetime]]] = {}  # by read: first, last
        self.lock = threading.Lock()

    def read_pages(self, read: Read) -> Iterator[Page]:
        position = 0 if read.start is None else bisect.bisect_left(self.instants, read.start)
        while True:
            page = self.records[position : position + self.page_size]
            time.sleep(self.latency)
            if page:
                with self.lock:
                    self.pages_of.setdefault(id(read), []).append(
                        (self.instants[position], self.instants[position + len(page) - 1])
                    )
            yield Page([dict(r) for r in page], datetime.now(UTC))
            position += self.page_size
            if position >= len(self.records):
                return

    def probe(self, since: str | None) -> tuple[str, datetime] | None:
        start = ORIGIN if since is None else parse_instant(since, what="since")
        position = bisect.bisect_left(self.instants, start)
        if position == len(self.records):
            return None
        return self.records[position]["updated_at"], self.instants[position]

    @staticmethod
    def last_instant(page: Page) -> datetime | None:
        return parse_instant(page.records[-1]["updated_at"], what="") if page.records else None


def read_with_slices(
    api: FakeAPI, cap: int, end: datetime, slots: RequestSlots | None = None
) -> tuple[list[str], list[Read]]:
    """Read [start of list, end) as the record loop does: cut each page at its read's end."""
    reads = [Read(None, end)]
    lock = threading.Lock()
    delivered: list[str] = []
    slicer = Slicer(api, slots or RequestSlots(cap), lock, reads)
    for read, page in slicer.pages(list(reads)):
        if page is None:
            continue
        for record in page.records:
            instant = parse_instant(record["updated_at"], what="")
            assert read.since is None or instant >= t.cast("datetime", read.start)
            if read.until is not None and instant >= read.until:
                break
            delivered.append(record["id"])
        read.records += len(page.records)
    return delivered, reads


class ProbeCountingAPI(FakeAPI):
    """A FakeAPI that counts its probes."""

    probes = 0

    def probe(self, since: str | None) -> tuple[str, datetime] | None:
        self.probes += 1
        return super().probe(since)


def uniform(rng: random.Random, count: int) -> list[float]:
    return [rng.uniform(0, YEAR) for _ in range(count)]


def burst(rng: random.Random, count: int) -> list[float]:
    """Years of sparse records, then nearly all of them within a day."""
    sparse = [rng.uniform(0, 3 * YEAR) for _ in range(count // 50)]
    return sparse + [3 * YEAR + rng.uniform(0, 86400) for _ in range(count - len(sparse))]


def ties(rng: random.Random, count: int) -> list[float]:
    """Many records on few instants: ties at every possible cut."""
    return [float(rng.randrange(20)) * 3600 for _ in range(count)]


def clusters(rng: random.Random, count: int) -> list[float]:
    return [rng.choice([0.1, 0.5, 0.9]) * YEAR + rng.uniform(0, 60) for _ in range(count)]


DISTRIBUTIONS = {"uniform": uniform, "burst": burst, "ties": ties, "clusters": clusters}


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("shape", sorted(DISTRIBUTIONS))
def test_every_record_once_and_no_request_past_a_slices_end(shape: str, seed: int) -> None:
    rng = random.Random(f"{shape}-{seed}")
    count = rng.choice([0, 1, 7, 250, 1500])
    api = FakeAPI(
        DISTRIBUTIONS[shape](rng, count),
        page_size=rng.choice([1, 10, 100]),
        latency=rng.choice([0.0, 0.001]),  # pages that take a while: splits race the reads
    )
    end = ORIGIN + timedelta(seconds=4 * YEAR)  # the run's range reaches far past the records
    delivered, reads = read_with_slices(api, cap=rng.choice([2, 4, 16]), end=end)
    assert sorted(delivered) == [r["id"] for r in api.records]  # each once, none lost
    for read in reads:
        assert read.finished
        pages = api.pages_of.get(id(read), [])
        assert read.until is not None
        reaching = [i for i, (_, last) in enumerate(pages) if last >= read.until]
        # The first page that reaches the end is the last one requested.
        assert not reaching or reaching[0] == len(pages) - 1, (read, pages)
    ranges = sorted((read.start or ORIGIN, read.until or end) for read in reads)
    for (_, until), (start, _) in itertools.pairwise(ranges):
        assert until <= start  # the ranges never overlap: a tie at a cut goes one way


def test_a_burst_is_split_where_it_is_not_by_equal_spans_of_time() -> None:
    rng = random.Random(7)
    api = FakeAPI(burst(rng, 3000), page_size=100, latency=0.02)  # 0.6 s for one reader
    delivered, reads = read_with_slices(api, cap=8, end=ORIGIN + timedelta(seconds=4 * YEAR))
    assert sorted(delivered) == [r["id"] for r in api.records]
    busy = [read for read in reads if read.records >= 100]
    assert len(busy) >= 4  # the burst's day went to several slices, not one


def test_an_empty_range_is_read_once_and_not_split() -> None:
    api = FakeAPI([], page_size=10)
    delivered, reads = read_with_slices(api, cap=8, end=ORIGIN + timedelta(days=1))
    assert delivered == []
    assert len(reads) == 1


def test_a_range_a_few_pages_from_its_end_is_not_split() -> None:
    # 5 pages evenly spread: after the 2nd, 3 are left, read as soon without a probe and a cut.
    api = ProbeCountingAPI([YEAR * i / 500 for i in range(500)], page_size=100, latency=0.02)
    delivered, reads = read_with_slices(api, cap=8, end=ORIGIN + timedelta(seconds=YEAR))
    assert sorted(delivered) == [r["id"] for r in api.records]
    assert (len(reads), api.probes) == (1, 0)


def test_sliced_streams_share_their_pages_in_hand_and_an_early_end_gives_its_share_back() -> None:
    slots = RequestSlots(4)
    end = ORIGIN + timedelta(seconds=YEAR)
    streams = [FakeAPI(uniform(random.Random(seed), 2000), page_size=10) for seed in (1, 2)]
    reads = [Read(None, end)]
    first = Slicer(streams[0], slots, threading.Lock(), reads).pages(list(reads))
    next(first)  # a page in hand, not written yet: room the other stream's slices lack
    free = sum(slots.pages.acquire(blocking=False) for _ in range(4))
    for _ in range(free):
        slots.pages.release()
    assert free <= 3
    first.close()  # the stream ends early (it failed, or the run stops)
    delivered, _ = read_with_slices(streams[1], 4, end, slots)
    assert sorted(delivered) == [r["id"] for r in streams[1].records]
    assert sum(slots.pages.acquire(blocking=False) for _ in range(5)) == 4


def test_a_rate_limited_run_adds_no_slice() -> None:
    api = FakeAPI(uniform(random.Random(3), 2000), page_size=10, latency=0.001)
    reads = [Read(None, ORIGIN + timedelta(seconds=YEAR))]
    slicer = Slicer(api, RequestSlots(8), threading.Lock(), reads, rate_limited=lambda: True)
    delivered = [r["id"] for _, page in slicer.pages(list(reads)) if page for r in page.records]
    assert sorted(delivered) == [r["id"] for r in api.records]
    assert len(reads) == 1  # splits cost requests that a rate limit makes the run wait for


def test_a_run_that_keeps_a_core_busy_adds_no_slice() -> None:
    api = ProbeCountingAPI(uniform(random.Random(4), 2000), page_size=10, latency=0.001)
    reads = [Read(None, ORIGIN + timedelta(seconds=YEAR))]
    slicer = Slicer(api, RequestSlots(8, busy=lambda: True), threading.Lock(), reads)
    delivered = [r["id"] for _, page in slicer.pages(list(reads)) if page for r in page.records]
    assert sorted(delivered) == [r["id"] for r in api.records]
    assert (len(reads), api.probes) == (1, 0)  # more requests would wait for the GIL


class FakeClocks:
    """A wall clock and a process CPU clock that tests move."""

    def __init__(self) -> None:
        self.wall = self.cpu = 0.0

    def spend(self, wall: float, cpu: float) -> None:
        self.wall += wall
        self.cpu += cpu


@pytest.mark.parametrize(
    ("cpu", "verdict"), [(0.125, "idle"), (0.18, "idle"), (0.1875, "busy"), (0.25, "busy")]
)
def test_the_cpu_meter_says_busy_from_three_quarters_of_a_core(cpu: float, verdict: str) -> None:
    busy = verdict == "busy"
    clocks = FakeClocks()  # times in binary fractions: sums are exact
    meter = CpuMeter(now=lambda: clocks.wall, cpu=lambda: clocks.cpu)
    clocks.spend(5, 5)  # start-up, before the first question
    assert not meter.busy()
    clocks.spend(0.25, cpu)
    assert meter.busy() is busy
    clocks.spend(0.125, 0.0)  # within the next window: the last whole window still counts
    assert meter.busy() is busy
    clocks.spend(0.125, 0.0)  # a whole idle window
    assert not meter.busy()


def test_a_busy_run_keeps_each_streams_first_request_and_refuses_more() -> None:
    busy = True
    slots = RequestSlots(8, busy=lambda: busy)
    slots.expect(2)
    assert slots.take(required=True)
    assert not slots.take()
    busy = False
    assert slots.take()
