"""``redshift_keys.json``: DISTKEY / DISTSTYLE / SORTKEY per source table.

Read and checked with the configuration (:mod:`src.config.configuration_manager`).

An entry that names an unknown column or is malformed falls back to
``DISTSTYLE AUTO SORTKEY AUTO`` with one warning naming the table and the
problem; a file that is not valid JSON is a configuration error.
https://docs.aws.amazon.com/redshift/latest/dg/r_CREATE_TABLE_NEW.html
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from src.errors import ConfigError
from src.utils.logging_setup import get_logger
from src.utils.naming import normalize_column_name, quote_pg

log = get_logger("redshift_keys")
KEYS_FILE = "redshift_keys.json"
_DISTSTYLES = ("AUTO", "ALL", "EVEN", "KEY")
# Redshift allows at most 8 columns in an interleaved sort key.
# https://docs.aws.amazon.com/redshift/latest/dg/t_Sorting_data.html
_MAX_INTERLEAVED = 8


@dataclass(frozen=True)
class TableKeys:
    """Validated keys for one table; the defaults are Redshift's AUTO choices."""

    diststyle: str = "AUTO"
    distkey: str | None = None
    sortkey_type: str = "compound"
    sortkey: tuple[str, ...] = ()

    def clauses(self) -> str:
        """``DISTSTYLE … [DISTKEY(…)] {COMPOUND|INTERLEAVED} SORTKEY(…) | SORTKEY AUTO``."""
        parts = [f"DISTSTYLE {self.diststyle}"]
        if self.distkey:
            parts.append(f"DISTKEY({quote_pg(self.distkey)})")
        if self.sortkey:
            cols = ", ".join(quote_pg(c) for c in self.sortkey)
            parts.append(f"{self.sortkey_type.upper()} SORTKEY({cols})")
        else:
            parts.append("SORTKEY AUTO")
        return " ".join(parts)


def load_keys_file(path: Path) -> dict[str, Any]:
    """The parsed file (empty when absent); ConfigError when it is not valid JSON."""
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise ConfigError(f"{path.name}: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path.name}: expected an object keyed by schema.table")
    return data


def table_keys(entries: dict[str, Any], table: str, columns: Iterable[str]) -> TableKeys:
    """Validate ``entries[table]`` against the table's target column names."""
    entry = entries.get(table)
    if entry is None:
        return TableKeys()
    try:
        return _parse(entry, set(columns))
    except ValueError as exc:
        log.warning(
            f"redshift_keys.json: {table}: {exc}; using DISTSTYLE AUTO SORTKEY AUTO",
            table=table,
        )
        return TableKeys()


def entry_problems(entries: dict[str, Any]) -> list[tuple[str, str]]:
    """``(table, problem)`` for each entry malformed whatever the table's columns are.

    What ``config validate`` can say without the tables; the column names are
    checked when a table is created (:func:`table_keys`).
    """
    problems = []
    for table, entry in entries.items():
        try:
            _parse(entry, None)
        except ValueError as exc:
            problems.append((table, str(exc)))
    return problems


def _column(name: Any, columns: set[str] | None) -> str:
    if not isinstance(name, str) or not name:
        raise ValueError(f"column name {name!r} is not a string")
    normalised = normalize_column_name(name)
    if columns is not None and normalised not in columns:
        raise ValueError(f"unknown column {name!r}")
    return normalised


def _parse(entry: Any, columns: set[str] | None) -> TableKeys:
    if not isinstance(entry, dict):
        raise ValueError("entry must be an object")
    unknown = set(entry) - {"distkey", "diststyle", "sortkey"}
    if unknown:
        raise ValueError(f"unknown setting(s) {', '.join(sorted(unknown))}")
    distkey = _column(entry["distkey"], columns) if entry.get("distkey") else None
    style = str(entry.get("diststyle", "KEY" if distkey else "AUTO")).upper()
    if style not in _DISTSTYLES:
        raise ValueError(f"diststyle {style!r} is not one of {', '.join(_DISTSTYLES)}")
    if style == "KEY" and not distkey:
        raise ValueError("diststyle KEY needs a distkey")
    if distkey and style != "KEY":
        raise ValueError(f"distkey needs diststyle KEY, not {style}")
    raw = entry.get("sortkey")
    kind = "compound"
    if isinstance(raw, dict):
        kind = str(raw.get("type", "compound")).lower()
        if kind not in ("compound", "interleaved"):
            raise ValueError(f"sortkey type {kind!r} is not compound or interleaved")
        raw = raw.get("columns")
    if raw is None:
        names: list[Any] = []
    elif isinstance(raw, str):
        names = [raw]
    elif isinstance(raw, list):
        names = raw
    else:
        raise ValueError("sortkey must be a string, a list or an object")
    sortkey = tuple(_column(n, columns) for n in names)
    if kind == "interleaved" and not 1 <= len(sortkey) <= _MAX_INTERLEAVED:
        raise ValueError(f"an interleaved sortkey takes 1 to {_MAX_INTERLEAVED} columns")
    return TableKeys(style, distkey, kind, sortkey)
