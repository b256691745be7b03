"""Identifier normalisation, quoting and S3 key naming (SPEC §7, §8)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from src.errors import ConfigError, DataError
from src.utils.naming import (
    MAX_IDENTIFIER_BYTES,
    REDSHIFT_SYSTEM_COLUMNS,
    key_part,
    normalize_column_name,
    normalize_column_names,
    normalize_table_name,
    quote_literal,
    quote_mysql,
    quote_mysql_table,
    quote_pg,
    quote_pg_table,
    split_table_name,
    table_slug,
    task_id,
)
from src.utils.stage_keys import (
    data_file_name,
    lock_key,
    new_execution_id,
    partition_path,
    table_data_prefix,
    watermark_key,
)

PROPS = settings(max_examples=200, deadline=None)
SLUG = re.compile(r"^[a-z0-9_]+$")
SCOPE, SCHEMA, TABLE, TARGET = (
    "US_DW_UNIDW_SSH",
    "unidw",
    "dw_parcel_detail_tool",
    "redshift_default",
)
SLUG_EXAMPLE = "us_dw_unidw_ssh_unidw_dw_parcel_detail_tool"
EMOJI = "😀"  # 4 bytes of UTF-8

# Characters that have broken naming code before: quotes of both dialects, SQL
# punctuation, path separators, dots, NUL/control characters, case-folding traps
# (Kelvin sign, dotted capital I) and a character outside the BMP.
HOSTILE = st.text(
    alphabet=st.one_of(
        st.sampled_from(list("`\"';./\\ -:_$%*?\x00\n\tAZaz09éÉ中İß\u212a" + EMOJI)),
        st.characters(),
    ),
    max_size=40,
)
NON_EMPTY_HOSTILE = HOSTILE.filter(bool)


def ascii_lower(text: str) -> str:
    return "".join(c.lower() if "A" <= c <= "Z" else c for c in text)


def one_line(exc: pytest.ExceptionInfo[BaseException]) -> str:
    message = str(exc.value)
    assert "\n" not in message and message
    return message


# --- split_table_name -------------------------------------------------------


def test_split_table_name_on_first_dot() -> None:
    assert split_table_name("unidw.dw_parcel_detail_tool") == ("unidw", "dw_parcel_detail_tool")
    assert split_table_name("a.b.c") == ("a", "b.c")


@pytest.mark.parametrize("bad", ["orders", ".orders", "unidw.", ".", "", "uni\ndw.t"])
def test_split_table_name_rejects_missing_parts(bad: str) -> None:
    with pytest.raises(ConfigError) as exc:
        split_table_name(bad)
    assert exc.value.exit_code == 1
    assert repr(bad) in one_line(exc)


# --- column names -----------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "target"),
    [
        ("190_time", "col_190_time"),
        ("oid", "col_oid"),
        ("OID", "col_oid"),
        ("CTID", "col_ctid"),
        ("xmin", "col_xmin"),
        ("insertxid", "col_insertxid"),
        ("Order.ID", "order.id"),
        ("Order Date", "order date"),
        ('a"b', 'a"b'),
        ("a`b;DROP", "a`b;drop"),
        ("_id", "_id"),
        ("col_oid", "col_oid"),
        ("oid2", "oid2"),
        ("ÉTAT", "État"),  # only ASCII letters fold, like Redshift and PostgreSQL
        ("İD", "İd"),
        ("\u212a", "\u212a"),  # Kelvin sign stays: str.lower() would turn it into ASCII k
        (EMOJI * 31, EMOJI * 31),  # 124 bytes
        ("a" * 127, "a" * 127),
        ("1" + "a" * 122, "col_1" + "a" * 122),  # exactly 127 bytes with the prefix
    ],
)
def test_normalize_column_name_examples(source: str, target: str) -> None:
    assert normalize_column_name(source) == target


def test_system_columns_include_the_documented_ones() -> None:
    assert {"oid", "tableoid", "xmin", "cmin", "xmax", "cmax", "ctid"} <= REDSHIFT_SYSTEM_COLUMNS
    assert all(name == name.lower() for name in REDSHIFT_SYSTEM_COLUMNS)


@pytest.mark.parametrize(
    "bad",
    [
        "",
        EMOJI * 64,  # 256 bytes
        EMOJI * 32,  # 128 bytes
        "a" * 128,
        "1" + "a" * 123,  # 124 bytes, 128 with "col_"
        "a\x00b",
        "a\nb",
        "\ud800",  # lone surrogate: not encodable as UTF-8
    ],
)
def test_normalize_column_name_errors(bad: str) -> None:
    with pytest.raises(DataError) as exc:
        normalize_column_name(bad)
    assert exc.value.exit_code == 4
    message = one_line(exc)
    assert "column" in message and "rename" in message
    if bad:
        assert repr(bad) in message


@PROPS
@given(NON_EMPTY_HOSTILE)
def test_normalize_column_name_properties(name: str) -> None:
    try:
        result = normalize_column_name(name)
    except DataError:
        bad_char = any(
            ord(c) < 32 or 127 <= ord(c) < 160 or 0xD800 <= ord(c) < 0xE000 for c in name
        )
        lowered = ascii_lower(name)
        prefix = "col_" if lowered[0] in "0123456789" or lowered in REDSHIFT_SYSTEM_COLUMNS else ""
        too_long = len((prefix + lowered).encode("utf-8", "surrogatepass")) > MAX_IDENTIFIER_BYTES
        assert bad_char or too_long
        return
    assert len(result.encode("utf-8")) <= MAX_IDENTIFIER_BYTES
    assert result in (ascii_lower(name), "col_" + ascii_lower(name))
    assert result[0] not in "0123456789"
    assert result not in REDSHIFT_SYSTEM_COLUMNS
    assert normalize_column_name(result) == result  # idempotent


def test_normalize_column_names_keeps_order() -> None:
    names = ["ID", "190_time", "Order Date", "oid"]
    assert normalize_column_names(names, "unidw.t") == [
        "id",
        "col_190_time",
        "order date",
        "col_oid",
    ]


@pytest.mark.parametrize(
    ("first", "second"),
    [("ID", "id"), ("190_time", "col_190_time"), ("oid", "col_oid"), ("Order", "ORDER")],
)
def test_normalize_column_names_collision_names_both(first: str, second: str) -> None:
    with pytest.raises(DataError) as exc:
        normalize_column_names(["keep", first, "other", second], "unidw.orders")
    message = one_line(exc)
    assert repr(first) in message and repr(second) in message and "unidw.orders" in message


def test_normalize_column_names_error_names_the_table() -> None:
    with pytest.raises(DataError) as exc:
        normalize_column_names(["ok", EMOJI * 40], "unidw.orders")
    assert "unidw.orders" in one_line(exc)


@PROPS
@given(st.lists(NON_EMPTY_HOSTILE, max_size=8))
def test_normalize_column_names_all_or_error(names: list[str]) -> None:
    try:
        result = normalize_column_names(names, "s.t")
    except DataError:
        return
    assert len(result) == len(set(result)) == len(names)
    assert result == [normalize_column_name(n) for n in names]


# --- table names ------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "target"),
    [("Orders", "orders"), ("2024_sales", "t_2024_sales"), ("oid", "oid"), ("a.b", "a.b")],
)
def test_normalize_table_name_examples(source: str, target: str) -> None:
    assert normalize_table_name(source) == target


@pytest.mark.parametrize("bad", ["", "a" * 128, "9" + "a" * 125, "a\x00"])
def test_normalize_table_name_errors(bad: str) -> None:
    with pytest.raises(ConfigError) as exc:
        normalize_table_name(bad)
    assert "target_name" in one_line(exc)


# --- quoting ----------------------------------------------------------------


def test_quote_examples() -> None:
    assert quote_mysql("a`b") == "`a``b`"
    assert quote_mysql_table("uni`dw", "t") == "`uni``dw`.`t`"
    assert quote_pg('a"b') == '"a""b"'
    assert quote_pg_table("public", 'x"y') == '"public"."x""y"'
    assert quote_literal("it's") == "'it''s'"
    assert quote_literal("") == "''"


def _unquote(quoted: str, quote: str) -> str:
    assert quoted[0] == quoted[-1] == quote and len(quoted) >= 3
    inner = quoted[1:-1]
    # every quote inside is doubled: nothing can end the identifier early
    assert re.fullmatch(f"(?:[^{quote}]|{quote}{quote})*", inner, flags=re.DOTALL)
    assert inner.count(quote) % 2 == 0
    return inner.replace(quote * 2, quote)


@PROPS
@given(NON_EMPTY_HOSTILE.filter(lambda s: "\x00" not in s))
def test_quoting_round_trips(name: str) -> None:
    assert _unquote(quote_mysql(name), "`") == name
    assert _unquote(quote_pg(name), '"') == name
    schema, table = _unquote_table(quote_pg_table(name, name), '"')
    assert schema == table == name


def _unquote_table(quoted: str, quote: str) -> tuple[str, str]:
    parts = re.fullmatch(
        f"({quote}(?:[^{quote}]|{quote}{quote})*{quote})\\.(.*)", quoted, re.DOTALL
    )
    assert parts is not None
    return _unquote(parts.group(1), quote), _unquote(parts.group(2), quote)


@PROPS
@given(HOSTILE.filter(lambda s: "\x00" not in s and "\\" not in s))
def test_quote_literal_round_trips(value: str) -> None:
    quoted = quote_literal(value)
    assert quoted[0] == quoted[-1] == "'"
    assert re.fullmatch("(?:[^']|'')*", quoted[1:-1], flags=re.DOTALL)
    assert quoted[1:-1].replace("''", "'") == value


@pytest.mark.parametrize("bad", ["", "a\x00b"])
def test_quote_identifier_rejects_empty_and_nul(bad: str) -> None:
    for quote in (quote_mysql, quote_pg):
        with pytest.raises(DataError):
            quote(bad)


@pytest.mark.parametrize("secret", ["s3cr\x00t", "s3cr\\t"])
def test_quote_literal_rejects_without_echoing_the_value(secret: str) -> None:
    with pytest.raises(DataError) as exc:
        quote_literal(secret)
    assert "s3cr" not in one_line(exc)


# --- S3 key parts -----------------------------------------------------------


def _hash(*parts: str) -> str:
    return hashlib.sha1(json.dumps(list(parts)).encode("ascii")).hexdigest()[:8]


def test_table_slug_example() -> None:
    assert table_slug(SCOPE, SCHEMA, TABLE) == SLUG_EXAMPLE
    assert key_part("sync") == "sync"


def test_key_part_replaced_characters_add_hash() -> None:
    # SPEC §8 spells ".", ":" and "-" as "_" with no hash (the old tool's keys).
    assert key_part("US-DW", "a.b") == "us_dw_a_b"
    assert {key_part(n) for n in ["a.b", "a-b", "a:b", "a_b"]} == {"a_b"}
    assert key_part("a b") == f"a_b_{_hash('a b')}"
    slugs = {key_part(n) for n in ["a b", "a/b", "a`b", "a;b", "a_b", "aéb"]}
    assert len(slugs) == 6


@pytest.mark.parametrize("parts", [(), ("",), ("a", ""), ("", "b")])
def test_key_part_rejects_empty(parts: tuple[str, ...]) -> None:
    with pytest.raises(ConfigError):
        key_part(*parts)


@PROPS
@given(st.lists(NON_EMPTY_HOSTILE, min_size=1, max_size=4))
def test_key_part_is_key_safe(parts: list[str]) -> None:
    slug = key_part(*parts)
    assert SLUG.match(slug)
    assert ".." not in slug and not slug.startswith("/")
    assert key_part(*parts) == slug  # deterministic


@PROPS
@given(NON_EMPTY_HOSTILE, NON_EMPTY_HOSTILE)
def test_key_part_distinct_names_distinct_slugs(a: str, b: str) -> None:
    spec_fold = str.maketrans({".": "_", ":": "_", "-": "_"})
    if ascii_lower(a).translate(spec_fold) != ascii_lower(b).translate(spec_fold):
        assert key_part(a) != key_part(b)


@PROPS
@given(st.text("ab.-_ :`", min_size=1, max_size=6), st.text(" `/;", min_size=1, max_size=3))
def test_names_differing_only_in_replaced_characters(stem: str, filler: str) -> None:
    a, b = stem + filler + stem, stem + "." + stem
    if a != b:
        assert table_slug("s", "d", a) != table_slug("s", "d", b)


def test_watermark_and_lock_keys() -> None:
    name = f"{SLUG_EXAMPLE}_redshift_default"
    assert watermark_key(SCOPE, SCHEMA, TABLE, TARGET) == f"watermarks/v2/{name}.json"
    assert lock_key(SCOPE, SCHEMA, TABLE, TARGET) == f"watermarks/v2/locks/{name}.lock"


@PROPS
@given(NON_EMPTY_HOSTILE, NON_EMPTY_HOSTILE, NON_EMPTY_HOSTILE)
def test_watermark_key_is_one_safe_object(scope: str, table: str, target: str) -> None:
    key = watermark_key(scope, "db", table, target)
    assert re.fullmatch(r"watermarks/v2/[a-z0-9_]+\.json", key)
    assert re.fullmatch(
        r"watermarks/v2/locks/[a-z0-9_]+\.lock", lock_key(scope, "db", table, target)
    )


# --- data prefixes and file names -------------------------------------------


@pytest.mark.parametrize(
    ("incremental", "isolation", "expected"),
    [
        ("incremental/", "us_dw_unidw/", f"incremental/us_dw_unidw/{SLUG_EXAMPLE}/"),
        ("/incremental//", "/./us_dw//x/", f"incremental/us_dw/x/{SLUG_EXAMPLE}/"),
        ("", "", f"{SLUG_EXAMPLE}/"),
        ("incremental", "", f"incremental/{SLUG_EXAMPLE}/"),
        ("/", "./", f"{SLUG_EXAMPLE}/"),
    ],
)
def test_table_data_prefix(incremental: str, isolation: str, expected: str) -> None:
    assert table_data_prefix(incremental, isolation, SCOPE, SCHEMA, TABLE) == expected


@pytest.mark.parametrize("bad", ["..", "a/../b", "../", "a/..", "a\\b", "a\x00b"])
def test_table_data_prefix_rejects_traversal(bad: str) -> None:
    for args in ((bad, "x/"), ("x/", bad)):
        with pytest.raises(ConfigError) as exc:
            table_data_prefix(*args, SCOPE, SCHEMA, TABLE)
        assert repr(bad) in one_line(exc)


PATH_SETTING = st.text(alphabet=st.sampled_from(list("ab./_-")), max_size=12).filter(
    lambda s: ".." not in s.split("/")
)


@PROPS
@given(PATH_SETTING, PATH_SETTING, NON_EMPTY_HOSTILE, NON_EMPTY_HOSTILE)
def test_table_data_prefix_properties(inc: str, iso: str, schema: str, table: str) -> None:
    prefix = table_data_prefix(inc, iso, "scope", schema, table)
    assert prefix.endswith("/") and not prefix.startswith("/") and "//" not in prefix
    assert not {".", ".."} & set(prefix.split("/"))
    assert prefix.split("/")[-2] == table_slug("scope", schema, table)


@PROPS
@given(NON_EMPTY_HOSTILE, HOSTILE, NON_EMPTY_HOSTILE)
def test_table_prefix_never_contains_another_table(a: str, extra: str, other: str) -> None:
    # a table whose name extends another's (orders / orders_archive) and any other table
    for b in (a + extra, other):
        pa = table_data_prefix("inc/", "iso/", "scope", "db", a)
        pb = table_data_prefix("inc/", "iso/", "scope", "db", b)
        if table_slug("scope", "db", a) != table_slug("scope", "db", b):
            assert not pb.startswith(pa) and not pa.startswith(pb)


def test_orders_prefix_does_not_match_orders_archive() -> None:
    orders = table_data_prefix("inc", "iso", SCOPE, SCHEMA, "orders")
    archive = table_data_prefix("inc", "iso", SCOPE, SCHEMA, "orders_archive")
    assert not archive.startswith(orders)


def test_partition_path() -> None:
    assert partition_path(dt.date(2025, 9, 26)) == "year=2025/month=09/day=26/"
    assert partition_path(dt.date(5, 1, 2)) == "year=0005/month=01/day=02/"


def test_data_file_name_example() -> None:
    started = dt.datetime(2025, 9, 26, 19, 54, 38, 135401, tzinfo=dt.UTC)
    name = data_file_name(SCOPE, SCHEMA, TABLE, started, "sync_20250926_195438_2f01922d", 1, 0)
    assert name == f"{SLUG_EXAMPLE}_20250926_195438_2f01922d_00001_000.parquet"


def test_data_file_name_converts_to_utc() -> None:
    started = dt.datetime(2025, 9, 27, 3, 54, 38, tzinfo=dt.timezone(dt.timedelta(hours=8)))
    name = data_file_name("s", "d", "t", started, "sync_x_abc", 12, 7)
    assert name == "s_d_t_20250926_195438_abc_00012_007.parquet"
    naive = data_file_name("s", "d", "t", started.replace(tzinfo=None), "abc", 0, 0)
    assert naive == "s_d_t_20250927_035438_abc_00000_000.parquet"


def test_data_file_name_rejects_negative_numbers() -> None:
    with pytest.raises(ValueError):
        data_file_name("s", "d", "t", dt.datetime(2025, 1, 1), "sync_x_abc", -1, 0)


@PROPS
@given(
    NON_EMPTY_HOSTILE,
    NON_EMPTY_HOSTILE,
    st.datetimes(min_value=dt.datetime(1000, 1, 2), max_value=dt.datetime(9999, 12, 30)),
    st.integers(0, 10**6),
    st.integers(0, 10**4),
)
def test_data_file_name_is_one_safe_segment(
    schema: str, table: str, started: dt.datetime, chunk: int, file: int
) -> None:
    execution_id = new_execution_id(started)
    name = data_file_name("scope", schema, table, started, execution_id, chunk, file)
    assert re.fullmatch(r"[a-z0-9_]+\.parquet", name)
    assert name.startswith(table_slug("scope", schema, table) + "_")
    assert name.endswith(f"_{execution_id[-8:]}_{chunk:05d}_{file:03d}.parquet")


def test_new_execution_id() -> None:
    now = dt.datetime(2025, 9, 26, 19, 54, 38, tzinfo=dt.UTC)
    assert re.fullmatch(r"sync_20250926_195438_[0-9a-f]{8}", new_execution_id(now))
    local = now.astimezone(dt.timezone(dt.timedelta(hours=-7)))
    assert new_execution_id(local).startswith("sync_20250926_195438_")
    assert re.fullmatch(r"sync_\d{8}_\d{6}_[0-9a-f]{8}", new_execution_id())
    assert len({new_execution_id(now) for _ in range(50)}) == 50


def test_task_ids_keep_case_and_the_dot_and_hash_what_they_replace() -> None:
    assert task_id("sync", "unidw.dw_orders") == "sync_unidw.dw_orders"
    assert task_id("verify", "Shop.Orders") == "verify_Shop.Orders"
    # Where "_" splits the name matters: these two never share a task.
    assert task_id("sync", "a.b_c") != task_id("sync", "a_b.c")
    spaced, dashed = task_id("sync", "db.my table"), task_id("sync", "db.my_table")
    assert re.fullmatch(r"sync_db\.my_table_[0-9a-f]{8}", spaced)
    assert spaced != dashed
    assert re.fullmatch(r"[A-Za-z0-9_.-]+", task_id("sync", "db.tä-ble"))
    with pytest.raises(ConfigError):
        task_id("sync", "no_schema")
