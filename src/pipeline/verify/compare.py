"""The comparison of one table: checksummed segments, split where they differ, rows at the leaves.

The way data-diff/reladiff and pt-table-checksum compare, adapted to a cursor
scope: the first key column's range is split into segments; each side
computes ``COUNT(*)`` and ``SUM(row hash)`` of a segment at the same time (two
threads, one connection each); equal segments are done, unequal ones are
split again, and a segment of at most ``leaf_rows`` rows is fetched from both
sides as ``(key, hash)`` streams ordered by key and merged. A table whose key
cannot be split by arithmetic (text, dates, JSON compared in Python) is one
leaf: both whole streams are merged, in bounded memory.

Keys seen on one side only are looked up on the other without the scope: a
key the target lacks is *missing*; a key the source no longer has is
*extra*; a source row that moved past the scope since the last sync is *not
synced yet*, not a difference.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Generator, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from src.core.row_compare import DigestPlan, DigestSide, Range, RowDigest, canonical_json
from src.errors import DataError

T = TypeVar("T")
Key = tuple[Any, ...]
MAX_KEYS_LISTED = 1000
_RESOLVE_BATCH = 1000


@dataclass
class KeyTally:
    """How many keys of one kind, and the first :data:`MAX_KEYS_LISTED` of them."""

    count: int = 0
    keys: list[tuple[Any, ...]] = field(default_factory=list)

    def add(self, key: tuple[Any, ...]) -> None:
        """Count ``key``; keep it when the list has room."""
        self.count += 1
        if len(self.keys) < MAX_KEYS_LISTED:
            self.keys.append(key)


@dataclass
class Comparison:
    """What one table's comparison found."""

    source_rows: int = 0
    target_rows: int = 0
    missing: KeyTally = field(default_factory=KeyTally)
    extra: KeyTally = field(default_factory=KeyTally)
    different: KeyTally = field(default_factory=KeyTally)
    not_synced_yet: int = 0
    segments: int = 0
    rows_fetched: int = 0

    @property
    def equal(self) -> bool:
        """No key missing, extra or different."""
        return not (self.missing.count or self.extra.count or self.different.count)


@dataclass(frozen=True)
class CompareSettings:
    """How finely to split: initial segments, split factor, rows fetched per leaf.

    Checksumming a row costs about half of fetching and merging its digest
    (measured on the SPEC §10.1 table: docs/benchmarks.md), so unequal segments
    are split down to small leaves: with 100 scattered differences in 2M rows,
    5,000-row segments rehash a quarter of the table once and fetch ~50,000 rows.
    """

    leaf_rows: int = 1_000
    factor: int = 16
    segment_rows: int = 5_000  # rows per initial segment, by the source's estimate
    max_segments: int = 20_000
    read_ahead: int = 10_000  # source digests queued ahead of the merge


# Called with each batch of differing keys as it is found (``verify --repair``).
OnKeys = Callable[[str, list[tuple[Any, ...]]], None]


class TableComparer:
    """Compares the rows in scope of one table on two sides."""

    def __init__(
        self,
        source: DigestSide,
        target: DigestSide,
        plan: DigestPlan,
        settings: CompareSettings,
        on_keys: OnKeys | None = None,
    ) -> None:
        self.source, self.target, self.plan = source, target, plan
        self.settings = settings
        self.on_keys = on_keys
        self.result = Comparison()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="verify-source")

    def run(self, estimated_rows: int) -> Comparison:
        """Compare every segment; ``estimated_rows`` sizes the first split."""
        try:
            if not self.plan.bisectable:
                self._leaf(Range(), counted=True)
                return self.result
            (slo, shi), (tlo, thi) = self._both(lambda side: side.key_bounds())
            lows = [v for v in (slo, tlo) if v is not None]
            highs = [v for v in (shi, thi) if v is not None]
            if not lows:
                return self.result  # both sides empty in scope
            whole = Range(int(min(lows)), int(max(highs)) + 1)
            parts = estimated_rows // self.settings.segment_rows
            parts = max(1, min(self.settings.max_segments, parts))
            for segment in whole.split(parts):
                self._segment(segment, top=True)
            return self.result
        finally:
            self._pool.shutdown(wait=True)

    # ------------------------------------------------------------ segments
    def _both(self, call: Callable[[DigestSide], T]) -> tuple[T, T]:
        """``call`` on the source (in the worker thread) and the target, at once."""
        return at_once(lambda: call(self.source), lambda: call(self.target), self._pool)

    def _segment(self, rng: Range, top: bool) -> None:
        (s_count, s_sum), (t_count, t_sum) = self._both(lambda side: side.checksum(rng))
        self.result.segments += 1
        if top:
            self.result.source_rows += s_count
            self.result.target_rows += t_count
        if (s_count, s_sum) == (t_count, t_sum):
            return
        assert rng.lo is not None and rng.hi is not None
        if max(s_count, t_count) <= self.settings.leaf_rows or rng.hi - rng.lo <= 1:
            self._leaf(rng, counted=False)
            return
        for sub in rng.split(self.settings.factor):
            self._segment(sub, top=False)

    # ---------------------------------------------------------------- leaves
    def _leaf(self, rng: Range, counted: bool) -> None:
        """Merge both sides' ordered digests of ``rng``; the source is read ahead in a thread."""
        only_source: list[tuple[Any, ...]] = []
        only_target: list[tuple[Any, ...]] = []
        ahead = _read_ahead(lambda: self.source.digests(rng), self.settings.read_ahead)
        source = self._counted(ahead, "MySQL", counted)
        target = self._counted(self.target.digests(rng), "target", counted)
        try:
            s, t = next(source, None), next(target, None)
            while s is not None or t is not None:
                if t is None or (s is not None and s.key < t.key):
                    assert s is not None
                    only_source.append(s.key)
                    s = next(source, None)
                elif s is None or t.key < s.key:
                    only_target.append(t.key)
                    t = next(target, None)
                else:
                    if s.hash != t.hash or not _same_fetched(s, t):
                        self._found("different", [s.key])
                    s, t = next(source, None), next(target, None)
                if len(only_source) + len(only_target) >= _RESOLVE_BATCH:
                    self._resolve(only_source, only_target)
                    only_source, only_target = [], []
        finally:
            source.close()
            target.close()
        self._resolve(only_source, only_target)

    def _counted(
        self, rows: Iterator[RowDigest], side: str, counted: bool
    ) -> Generator[RowDigest, None, None]:
        """``rows``, counted, refusing a key that does not follow the one before.

        Out of order keys would make the merge report differences that are not.
        """
        last: tuple[Any, ...] | None = None
        for row in rows:
            if last is not None and not last < row.key:
                raise DataError(
                    f"verify: the {side} returned key {row.key!r} after {last!r}; the two "
                    "databases order this key differently, so it cannot be compared row by row"
                )
            last = row.key
            self.result.rows_fetched += 1
            if counted and side == "MySQL":
                self.result.source_rows += 1
            elif counted:
                self.result.target_rows += 1
            yield row

    def _resolve(
        self, only_source: list[tuple[Any, ...]], only_target: list[tuple[Any, ...]]
    ) -> None:
        """Look keys seen on one side up on the other, without the scope."""
        if only_source:
            in_target = self.target.present(only_source)
            self._found("different", [k for k in only_source if k in in_target])
            self._found("missing", [k for k in only_source if k not in in_target])
        if only_target:
            in_source = self.source.present(only_target)
            self.result.not_synced_yet += sum(1 for k in only_target if k in in_source)
            self._found("extra", [k for k in only_target if k not in in_source])

    def _found(self, kind: str, keys: list[tuple[Any, ...]]) -> None:
        if not keys:
            return
        tally = {"missing": self.result.missing, "extra": self.result.extra}.get(
            kind, self.result.different
        )
        for key in keys:
            tally.add(key)
        if self.on_keys is not None:
            self.on_keys(kind, keys)


def _same_fetched(s: RowDigest, t: RowDigest) -> bool:
    """The Python-compared columns (JSON) equal as canonical JSON."""
    return all(
        canonical_json(a) == canonical_json(b) for a, b in zip(s.fetched, t.fetched, strict=True)
    )


def at_once(
    source: Callable[[], T], target: Callable[[], T], pool: ThreadPoolExecutor | None = None
) -> tuple[T, T]:
    """Both calls at the same time (the source in ``pool``, else a new thread).

    Each side has its own connection, so the two never share a driver object.
    """
    if pool is None:
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="verify-source") as own:
            return at_once(source, target, own)
    pending = pool.submit(source)
    other = target()
    return pending.result(), other


_DONE = object()


_BATCH = 1_000  # items per queue entry: one lock round-trip per thousand rows


def _read_ahead(make: Callable[[], Iterator[T]], depth: int = 10_000) -> Iterator[T]:
    """Iterate ``make()`` in a thread, up to ``depth`` items ahead (both sides read at once)."""
    items: queue.Queue[Any] = queue.Queue(max(1, depth // _BATCH))
    stop = threading.Event()

    def put(item: Any) -> bool:
        while not stop.is_set():
            try:
                items.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        rows = make()
        try:
            batch: list[T] = []
            for item in rows:
                batch.append(item)
                if len(batch) == _BATCH:
                    if not put(batch):
                        return
                    batch = []
            if batch and not put(batch):
                return
            put(_DONE)
        except BaseException as exc:  # re-raised in the consumer
            put(exc)
        finally:
            close = getattr(rows, "close", None)
            if close is not None:
                close()  # ends the driver's cursor before its connection is used again

    thread = threading.Thread(target=produce, name="verify-read-ahead", daemon=True)
    thread.start()
    try:
        while (item := items.get()) is not _DONE:
            if isinstance(item, BaseException):
                raise item
            yield from item
    finally:
        stop.set()
        thread.join()
