"""A fast deterministic source of random choices built only on random.random()."""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from collections.abc import Sequence

T = TypeVar("T")


class Dice:
    """Cheap random choices (random.Random.choice and randrange are several times slower)."""

    def __init__(self, seed: str) -> None:
        """Seed the underlying generator with a string."""
        self.random = random.Random(seed).random  # noqa: S311 (fake data, not secrets)

    def below(self, limit: int) -> int:
        """Return an integer in [0, limit)."""
        return int(self.random() * limit)

    def between(self, low: int, high: int) -> int:
        """Return an integer in [low, high)."""
        return low + int(self.random() * (high - low))

    def chance(self, probability: float) -> bool:
        """Return True with the given probability."""
        return self.random() < probability

    def pick(self, options: Sequence[T]) -> T:
        """Return one of `options`."""
        return options[int(self.random() * len(options))]

    def subset(self, options: Sequence[T]) -> list[T]:
        """Return a random subset of `options`, in their order."""
        mask = int(self.random() * (1 << len(options)))
        return [option for bit, option in enumerate(options) if mask >> bit & 1]

    def maybe(self, value: T, null_rate: float = 0.1) -> T | None:
        """Return `value`, or None with probability `null_rate`."""
        return None if self.random() < null_rate else value

    def money(self, low: float, high: float) -> float:
        """Return an amount with two decimals in [low, high)."""
        return round(low + self.random() * (high - low), 2)
