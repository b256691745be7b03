"""What converting a query's raw batches changed (:mod:`src.backup.arrow_convert`).

Kept apart from the conversion, which imports ``pyarrow.compute`` (~45 ms): every
read keeps these counters, but a run with nothing new converts no batch and never
imports it.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Literal, cast

StatName = Literal["zero_dates", "nul_chars", "truncated"]


@dataclass
class ConversionStats:
    """What conversion changed: zero dates nulled, NUL characters stripped, values truncated."""

    zero_dates: int = 0
    nul_chars: int = 0
    truncated: int = 0
    by_column: dict[str, Counter[str]] = field(default_factory=dict)

    def count(self, counter: StatName, column: str, amount: int) -> None:
        """Add ``amount`` to ``counter`` for ``column`` (target name)."""
        if amount:
            setattr(self, counter, getattr(self, counter) + amount)
            self.by_column.setdefault(column, Counter())[counter] += amount

    def add(self, other: ConversionStats) -> None:
        """Accumulate ``other`` into this one."""
        for column, counts in other.by_column.items():
            for counter, amount in counts.items():
                self.count(cast(StatName, counter), column, amount)

    def as_dict(self) -> dict[str, int]:
        """The three totals, for the run report."""
        return {
            "zero_dates": self.zero_dates,
            "nul_chars": self.nul_chars,
            "truncated": self.truncated,
        }
