"""Ascending updated_at instants spread over 2024, with tie groups and mixed precision."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tap_analytics.sandbox.instants import MICROS, instant_of

if TYPE_CHECKING:
    from tap_analytics.sandbox.dice import Dice

YEAR_START = instant_of(2024, 1, 1)
YEAR_END = instant_of(2025, 1, 1) - MICROS
TIE_PROBABILITY = 0.3
SUB_SECOND_PROBABILITY = 0.08
FRACTION_PROBABILITY = 0.2
SUB_SECOND_STEPS = (250_000, 500_000, 123_456, 750_000)
FRACTIONS = (250_000, 500_000, 123_456, 750_000, 100_000, 1_000, 999_999)
FORCED_TIE_EVERY = 100  # a tie straddles every 100th position, so pages of 100 and 3 split ties


def updated_instants(count: int, dice: Dice) -> list[int]:
    """Return `count` non-decreasing instants in 2024 with many ties and a few fractions."""
    if count == 0:
        return []
    mean_step = (YEAR_END - YEAR_START - 86_400 * MICROS) / (
        count * (1 - TIE_PROBABILITY) * (1 - SUB_SECOND_PROBABILITY) * 1.05
    )
    instants = []
    moment = YEAR_START + dice.below(3_600) * MICROS
    for position in range(count):
        forced_tie = position % FORCED_TIE_EVERY == 0
        if position and (forced_tie or dice.random() < TIE_PROBABILITY):
            pass
        elif position and dice.random() < SUB_SECOND_PROBABILITY:
            moment += dice.pick(SUB_SECOND_STEPS)
        elif position:
            step = max(MICROS, int(dice.random() * 2 * mean_step) // MICROS * MICROS)
            moment = moment - moment % MICROS + step
            if dice.random() < FRACTION_PROBABILITY:
                moment += dice.pick(FRACTIONS)
        moment = min(moment, YEAR_END)
        instants.append(moment)
    return instants
