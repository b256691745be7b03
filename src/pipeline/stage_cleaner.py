"""List and delete a table's staged files: the core of the ``s3clean`` commands (SPEC §4).

A table's files are every object under its exact data prefix (the directory
ends with ``/``, so ``orders`` never matches ``orders_archive/``), listed
page by page. Each one is classified against the watermark:

* ``loaded``: in ``processed_s3_files`` (the target holds its rows), or older
  than its oldest name (the list keeps the newest 1000; the ledger has all);
* ``awaiting``: in ``backup_s3_files`` (not loaded yet);
* ``quarantined``: in ``quarantined_s3_files`` (unreadable; kept until
  ``verify --repair`` re-extracts its rows and releases it);
* ``orphan``: in no list, e.g. uploaded by a run killed before its watermark
  write; its rows were re-extracted by a later run, it is never loaded.

Cleaning deletes loaded files and orphans, and files awaiting load only when
asked to. It holds the table's lock, removes the keys from the watermark
first and deletes the objects second (batches of at most 1000): a crash in
between leaves orphans for the next clean, never a watermark naming a file
that is gone. Manifests (``manifests/<table>/``) are not under the data prefix
and are left alone: they are not data; an S3 lifecycle rule is the tool for them.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from src.config.settings import AppConfig
from src.core.stage import MAX_KEYS_PER_REQUEST, Stage, StagedObject
from src.core.table_lock import LockInfo
from src.core.table_run import TableRun
from src.errors import ConfigError
from src.pipeline.watermark_ops import open_table
from src.utils.logging_setup import get_logger

log = get_logger("s3clean")

LOADED, AWAITING, QUARANTINED, ORPHAN = "loaded", "awaiting", "quarantined", "orphan"
CATEGORIES = (LOADED, AWAITING, QUARANTINED, ORPHAN)
_AGE_RE = re.compile(r"^(\d+)\s*([smhdw])$")
_AGE_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_age(text: str) -> dt.timedelta:
    """``7d``, ``24h``, ``30m`` (also ``s`` and ``w``) → a duration; ConfigError otherwise."""
    match = _AGE_RE.match(text.strip().lower())
    if not match:
        raise ConfigError(
            f"--older-than {text!r} is not an age: write a number and a unit, "
            "e.g. 7d, 24h or 30m (units: s, m, h, d, w)"
        )
    return dt.timedelta(**{_AGE_UNITS[match.group(2)]: int(match.group(1))})


@dataclass(frozen=True)
class FileFilter:
    """``--older-than`` and ``--pattern`` (fnmatch on the file name, not the path)."""

    older_than: dt.timedelta | None = None
    pattern: str | None = None

    def matches(self, obj: StagedObject, now: dt.datetime) -> bool:
        """True when the object passes both filters."""
        if self.older_than is not None and obj.last_modified > now - self.older_than:
            return False
        name = obj.key.rsplit("/", 1)[-1]
        return self.pattern is None or fnmatch.fnmatchcase(name, self.pattern)

    def describe(self) -> str:
        """Human description, empty when there is no filter."""
        parts = []
        if self.older_than is not None:
            parts.append(f"older than {self.older_than}")
        if self.pattern is not None:
            parts.append(f"name matching {self.pattern!r}")
        return ", ".join(parts)


@dataclass(frozen=True)
class StagedEntry:
    """One staged object of the table, classified."""

    key: str
    uri: str
    name: str  # relative to the table's prefix
    size: int
    last_modified: dt.datetime
    category: str

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "key": self.key,
            "uri": self.uri,
            "name": self.name,
            "size": self.size,
            "last_modified": self.last_modified.isoformat(),
            "category": self.category,
        }


@dataclass
class StageScan:
    """A table's staged files that pass the filters, by category."""

    table: str
    scoped_name: str
    pipeline: str
    target: str
    prefix_uri: str
    filters: FileFilter
    entries: list[StagedEntry] = field(default_factory=list)
    listed: int = 0  # objects under the prefix, before filtering
    missing: dict[str, int] = field(default_factory=dict)  # in the watermark, not in the stage
    lock_holder: str | None = None

    def of(self, category: str) -> list[StagedEntry]:
        """The entries of one category, in key order."""
        return [e for e in self.entries if e.category == category]

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        groups = {c: self.of(c) for c in CATEGORIES}
        return {
            "table": self.table,
            "watermark_table": self.scoped_name,
            "pipeline": self.pipeline,
            "target": self.target,
            "prefix": self.prefix_uri,
            "filters": {
                "older_than_seconds": (
                    self.filters.older_than.total_seconds() if self.filters.older_than else None
                ),
                "pattern": self.filters.pattern,
            },
            "listed": self.listed,
            "counts": {c: len(v) for c, v in groups.items()},
            "bytes": {c: sum(e.size for e in v) for c, v in groups.items()},
            "missing_from_stage": self.missing,
            "lock_holder": self.lock_holder,
            "files": {c: [e.as_dict() for e in v] for c, v in groups.items()},
        }


def _lock_holder(stage: Stage, key: str) -> str | None:
    data = stage.get_bytes(key)
    if data is None:
        return None
    try:
        return LockInfo(**json.loads(data)).describe()
    except (ValueError, TypeError):
        return "an unreadable lock"


def _unlisted(uri: str, forgotten_through: str | None) -> str:
    """A file no list names: loaded long ago (the bounded list forgot it), else an orphan.

    Staged names sort by time within the table's prefix, so a file up to the
    greatest forgotten name is as old as the forgotten ones. Both kinds may be
    deleted; only the label differs.
    """
    return LOADED if forgotten_through is not None and uri <= forgotten_through else ORPHAN


def _scan(app: AppConfig, handle: TableRun, filters: FileFilter) -> StageScan:
    stage = handle.watermarks.stage
    prefix = handle.data_prefix
    wm = handle.watermarks.read()
    category = dict.fromkeys(wm.processed_s3_files, LOADED)
    category.update(dict.fromkeys(wm.backup_s3_files, AWAITING))  # never delete by mistake
    category.update(dict.fromkeys((q.file for q in wm.quarantined_s3_files), QUARANTINED))
    prefix_uri = stage.uri(prefix)  # a local stage's path drops the trailing "/"
    scan = StageScan(
        handle.table,
        handle.scoped_name,
        handle.pipeline.name,
        handle.pipeline.target,
        prefix_uri if prefix_uri.endswith("/") else prefix_uri + "/",
        filters,
        lock_holder=_lock_holder(stage, handle.lock.key),
    )
    now = dt.datetime.now(dt.UTC)
    seen: set[str] = set()
    for obj in stage.list(prefix):
        if not obj.key.startswith(prefix):  # belt and braces: exact prefix only
            continue
        scan.listed += 1
        uri = stage.uri(obj.key)
        seen.add(uri)
        if filters.matches(obj, now):
            kind = category.get(uri) or _unlisted(uri, wm.metadata.forgotten_through)
            name = obj.key[len(prefix) :]
            scan.entries.append(StagedEntry(obj.key, uri, name, obj.size, obj.last_modified, kind))
    for uri, kind in category.items():
        if uri not in seen:
            scan.missing[kind] = scan.missing.get(kind, 0) + 1
    return scan


def list_staged(app: AppConfig, table: str, pipeline: str | None, filters: FileFilter) -> StageScan:
    """The table's staged files that pass ``filters``, classified (takes no lock)."""
    return _scan(app, open_table(app, table, pipeline, "s3clean"), filters)


@dataclass
class CleanResult:
    """What ``s3clean clean`` deleted (or, in a dry run, would delete) and kept."""

    scan: StageScan
    to_delete: list[StagedEntry]
    kept_unloaded: list[StagedEntry]  # awaiting load, and quarantined (always kept)
    include_unloaded: bool
    dry_run: bool
    deleted: int = 0
    pruned: dict[str, int] = field(default_factory=dict)  # watermark list -> keys removed

    def counts(self, entries: list[StagedEntry] | None = None) -> dict[str, int]:
        """How many of ``entries`` (default: the ones to delete) fall in each category."""
        chosen = self.to_delete if entries is None else entries
        return {c: sum(1 for e in chosen if e.category == c) for c in CATEGORIES}


def _plan(scan: StageScan, include_unloaded: bool, dry_run: bool) -> CleanResult:
    deletable = {LOADED, ORPHAN} | ({AWAITING} if include_unloaded else set())
    return CleanResult(
        scan,
        [e for e in scan.entries if e.category in deletable],
        [
            e
            for e in scan.entries
            if e.category == QUARANTINED or (e.category == AWAITING and not include_unloaded)
        ],
        include_unloaded,
        dry_run,
    )


def clean_staged(
    app: AppConfig,
    table: str,
    pipeline: str | None,
    filters: FileFilter,
    *,
    include_unloaded: bool = False,
    dry_run: bool = False,
    confirm: Callable[[CleanResult], bool] | None = None,
) -> CleanResult:
    """Delete the table's loaded and orphan files passing ``filters`` (awaiting ones only
    with ``include_unloaded``), pruning the watermark's lists, under the table's lock.

    The plan is made without the lock and shown to ``confirm``; then, holding the
    lock, the files are classified again and only those confirmed that are still
    deletable are removed (a file a sync recorded meanwhile is no longer an orphan).
    A declined confirmation raises :class:`ConfigError` with nothing deleted.
    """
    handle = open_table(app, table, pipeline, "s3clean")
    plan = _plan(_scan(app, handle, filters), include_unloaded, dry_run)
    if dry_run or not plan.to_delete:
        return plan
    if confirm is not None and not confirm(plan):
        raise ConfigError("clean not confirmed; nothing was deleted (pass --force to skip it)")
    confirmed = {e.key for e in plan.to_delete}
    with handle.lock:
        fresh = _plan(_scan(app, handle, filters), include_unloaded, dry_run)
        fresh.scan.lock_holder = None  # we hold it
        fresh.to_delete = [e for e in fresh.to_delete if e.key in confirmed]
        gone = {e.uri for e in fresh.to_delete}
        wm = handle.watermarks.read()
        listed = set(wm.processed_s3_files)
        loaded = [u for u in wm.processed_s3_files if u not in gone]
        awaiting = [u for u in wm.backup_s3_files if u not in gone]
        # Loaded files the bounded list no longer names: only their count goes.
        forgotten = sum(1 for e in fresh.to_delete if e.category == LOADED and e.uri not in listed)
        forgotten = min(forgotten, wm.metadata.loaded_files_forgotten)
        pruned = {
            "processed_s3_files": len(wm.processed_s3_files) - len(loaded),
            "backup_s3_files": len(wm.backup_s3_files) - len(awaiting),
            "loaded_files_forgotten": forgotten,
        }
        fresh.pruned = {name: n for name, n in pruned.items() if n}
        if fresh.pruned:
            wm.processed_s3_files, wm.backup_s3_files = loaded, awaiting
            wm.metadata.loaded_files_forgotten -= forgotten
            handle.watermarks.write(wm)  # first: a crash now leaves orphans, not dangling keys
        keys = [e.key for e in fresh.to_delete]
        for start in range(0, len(keys), MAX_KEYS_PER_REQUEST):
            batch = keys[start : start + MAX_KEYS_PER_REQUEST]
            fresh.deleted += handle.watermarks.stage.delete(batch)
            log.info("deleted staged files", table=table, files=fresh.deleted, of=len(keys))
    return fresh
