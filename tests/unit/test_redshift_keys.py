"""redshift_keys.json parsing and validation (SPEC §3.4)."""

from __future__ import annotations

from pathlib import Path

import pytest
import structlog

from src.config.redshift_keys import TableKeys, load_keys_file, table_keys
from src.errors import ConfigError

COLUMNS = ["id", "billing_num", "create_at", "ant_parcel_no", "col_190_time", "sale_date"]


@pytest.mark.parametrize(
    ("entry", "clauses"),
    [
        (
            {"distkey": "ant_parcel_no",
             "sortkey": {"type": "compound", "columns": ["billing_num", "create_at"]}},
            'DISTSTYLE KEY DISTKEY("ant_parcel_no") COMPOUND SORTKEY("billing_num", "create_at")',
        ),
        (
            {"distkey": "id", "sortkey": {"type": "interleaved", "columns": ["id", "create_at"]}},
            'DISTSTYLE KEY DISTKEY("id") INTERLEAVED SORTKEY("id", "create_at")',
        ),
        (
            {"diststyle": "ALL", "sortkey": ["id"]},
            'DISTSTYLE ALL COMPOUND SORTKEY("id")',
        ),
        ({"sortkey": "sale_date"}, 'DISTSTYLE AUTO COMPOUND SORTKEY("sale_date")'),
        ({"sortkey": "190_time"}, 'DISTSTYLE AUTO COMPOUND SORTKEY("col_190_time")'),
        ({"diststyle": "even"}, "DISTSTYLE EVEN SORTKEY AUTO"),
    ],
)  # fmt: skip
def test_valid_entries(entry: dict[str, object], clauses: str) -> None:
    assert table_keys({"s.t": entry}, "s.t", COLUMNS).clauses() == clauses


def test_no_entry_is_auto() -> None:
    assert table_keys({}, "s.t", COLUMNS).clauses() == "DISTSTYLE AUTO SORTKEY AUTO"


@pytest.mark.parametrize(
    ("entry", "problem"),
    [
        ({"distkey": "nope"}, "unknown column 'nope'"),
        ({"sortkey": ["id", "missing"]}, "unknown column 'missing'"),
        ({"diststyle": "RANDOM"}, "diststyle 'RANDOM' is not one of"),
        ({"diststyle": "KEY"}, "diststyle KEY needs a distkey"),
        ({"sortkey": {"type": "interleaved", "columns": [c for c in COLUMNS] * 2}},
         "an interleaved sortkey takes 1 to 8 columns"),
        ({"sortkey": 5}, "sortkey must be a string, a list or an object"),
        ({"partition": "x"}, "unknown setting(s) partition"),
    ],
)  # fmt: skip
def test_invalid_entries_fall_back_to_auto_with_one_warning(
    entry: dict[str, object], problem: str
) -> None:
    with structlog.testing.capture_logs() as logs:
        keys = table_keys({"s.t": entry}, "s.t", COLUMNS)
    assert keys == TableKeys()
    assert len(logs) == 1
    assert logs[0]["log_level"] == "warning"
    assert "s.t" in logs[0]["event"] and problem in logs[0]["event"]


def test_malformed_json_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "redshift_keys.json"
    path.write_text('{"s.t": {"distkey": "id",}}')
    with pytest.raises(ConfigError, match=r"redshift_keys\.json: not valid JSON"):
        load_keys_file(path)
    assert load_keys_file(tmp_path / "absent.json") == {}
