"""Redshift DDL rules for the test double: type names and limits, CREATE/ALTER TABLE checks.

Each statement is checked against Redshift's documented rules, then translated for the
PostgreSQL that stands in for Redshift: Redshift-only clauses (DISTSTYLE, DISTKEY, SORTKEY,
ENCODE, BACKUP, COLLATE) are stripped and Redshift-only types translated (VARBYTE(n) → a
BYTEA domain that enforces the byte limit; VARCHAR without a length → VARCHAR(256), …).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from tests.support.redshift_sql import (
    RedshiftError,
    Token,
    ident,
    paren_idents,
    qualified_name,
    quote_ident,
    tokenize,
)

# --------------------------------------------------------------------------- types


@dataclass(frozen=True)
class RsType:
    """A Redshift column type: ``kind`` plus length or precision/scale."""

    kind: str  # SMALLINT INTEGER BIGINT DECIMAL REAL DOUBLE BOOLEAN CHAR VARCHAR VARBYTE DATE …
    length: int | None = None
    precision: int | None = None
    scale: int | None = None

    def __str__(self) -> str:
        if self.kind == "DECIMAL":
            return f"DECIMAL({self.precision},{self.scale})"
        if self.length is not None:
            return f"{self.kind}({self.length})"
        return "DOUBLE PRECISION" if self.kind == "DOUBLE" else self.kind

    def pg(self, domain_schema: str) -> str:
        """The PostgreSQL type standing in for it (VARBYTE → a byte-limited BYTEA domain)."""
        if self.kind == "DECIMAL":
            return f"NUMERIC({self.precision},{self.scale})"
        if self.kind == "VARBYTE":
            return f"{quote_ident(domain_schema)}.{quote_ident(varbyte_domain(self.length or 0))}"
        return str(self)


def varbyte_domain(length: int) -> str:
    """Name of the BYTEA domain the double creates for VARBYTE(length)."""
    return f"varbyte_{length}"


# Type names and aliases:
#   https://docs.aws.amazon.com/redshift/latest/dg/c_Supported_data_types.html
# VARCHAR length in bytes, ≤ 65535, default 256; CHAR ≤ 4096, default 1; TEXT = VARCHAR(256):
#   https://docs.aws.amazon.com/redshift/latest/dg/r_Character_types.html
# VARBYTE default 64000, max 1024000 bytes:
#   https://docs.aws.amazon.com/redshift/latest/dg/r_VARBYTE_type.html
# DECIMAL default (18,0), precision ≤ 38, scale ≤ precision:
#   https://docs.aws.amazon.com/redshift/latest/dg/r_Numeric_types201.html
_SIMPLE = {
    "smallint": "SMALLINT", "int2": "SMALLINT", "integer": "INTEGER", "int": "INTEGER",
    "int4": "INTEGER", "bigint": "BIGINT", "int8": "BIGINT", "real": "REAL", "float4": "REAL",
    "float": "DOUBLE", "float8": "DOUBLE", "double precision": "DOUBLE", "boolean": "BOOLEAN",
    "bool": "BOOLEAN", "date": "DATE", "timestamp": "TIMESTAMP", "timestamptz": "TIMESTAMPTZ",
    "time": "TIME", "timetz": "TIMETZ", "char": "CHAR", "character": "CHAR", "nchar": "CHAR",
    "bpchar": "CHAR", "varchar": "VARCHAR", "character varying": "VARCHAR",
    "nvarchar": "VARCHAR", "text": "VARCHAR", "varbyte": "VARBYTE", "varbinary": "VARBYTE",
    "binary varying": "VARBYTE",
}  # fmt: skip
_LIMITS = {"CHAR": (1, 4096), "VARCHAR": (256, 65535), "VARBYTE": (64000, 1024000)}
_NOT_EMULATED = {"super", "geometry", "geography", "hllsketch", "interval"}


def _type_name(toks: list[Token], i: int) -> tuple[str, int]:
    """The (possibly multi-word) type name at ``i`` and how many tokens it took."""
    words = [t.value if t.kind == "word" else "" for t in toks[i : i + 4]]
    if words[:2] in (["double", "precision"], ["character", "varying"], ["binary", "varying"]):
        return " ".join(words[:2]), 2
    if words[:1] in (["timestamp"], ["time"]) and words[1:2] in (["with"], ["without"]):
        if words[2:4] != ["time", "zone"]:
            raise RedshiftError("syntax error in type name")
        return (words[0] + "tz" if words[1] == "with" else words[0]), 4
    return (words[0] if words else ""), 1


def parse_type(toks: list[Token], i: int) -> tuple[RsType, int]:
    """Parse a Redshift type (with optional length/precision) at ``i``; check its limits."""
    name, used = _type_name(toks, i)
    i += used
    args: list[str] = []
    if i < len(toks) and toks[i].is_punct("("):
        i += 1
        while i < len(toks) and not toks[i].is_punct(")"):
            if not toks[i].is_punct(","):
                args.append(toks[i].value)
            i += 1
        i += 1
    if name in ("decimal", "numeric"):
        p, s = (int(args[0]) if args else 18), (int(args[1]) if len(args) > 1 else 0)
        if not 1 <= p <= 38 or not 0 <= s <= p:
            raise RedshiftError(f"DECIMAL({p},{s}): precision must be 1..38, scale 0..precision")
        return RsType("DECIMAL", precision=p, scale=s), i
    kind = _SIMPLE.get(name)
    if kind is None:
        if name in _NOT_EMULATED:
            raise RedshiftError(f"type {name.upper()} is not emulated by the Redshift double")
        raise RedshiftError(f'type "{name}" does not exist')
    if kind in _LIMITS:
        default, limit = _LIMITS[kind]
        given = limit if args[:1] == ["max"] else int(args[0]) if args else default
        n = default if name == "text" else given
        if not 1 <= n <= limit:
            raise RedshiftError(f"length for type {kind.lower()} cannot exceed {limit}")
        return RsType(kind, length=n), i
    return RsType(kind), i


# --------------------------------------------------------------------------- names, encodings

# A user column may not take a system column name ("column name … conflicts with a system
# column name"); insertxid/deletexid are Redshift's own hidden columns. Identifiers are at
# most 127 bytes:
#   https://docs.aws.amazon.com/redshift/latest/dg/r_names.html
#   https://docs.aws.amazon.com/redshift/latest/dg/r_CREATE_TABLE_NEW.html
SYSTEM_COLUMNS = frozenset(
    {"oid", "tableoid", "xmin", "cmin", "xmax", "cmax", "ctid", "insertxid", "deletexid"}
)
MAX_IDENT_BYTES = 127
# Sort keys (same CREATE TABLE page): INTERLEAVED ≤ 8 columns, COMPOUND ≤ 400.
MAX_INTERLEAVED = 8
MAX_COMPOUND = 400
# Encoding keywords, and the types AZ64 and TEXT255/TEXT32K accept:
#   https://docs.aws.amazon.com/redshift/latest/dg/c_Compression_encodings.html
ENCODINGS = frozenset(
    {"raw", "az64", "bytedict", "delta", "delta32k", "lzo", "mostly8", "mostly16", "mostly32"}
    | {"runlength", "text255", "text32k", "zstd"}
)
_AZ64_KINDS = {"SMALLINT", "INTEGER", "BIGINT", "DECIMAL", "DATE", "TIMESTAMP", "TIMESTAMPTZ"}


def check_identifier(name: str, what: str) -> None:
    """Identifiers are at most 127 UTF-8 bytes."""
    if len(name.encode("utf-8")) > MAX_IDENT_BYTES:
        raise RedshiftError(f"{what} name {name[:40]!r}… is longer than {MAX_IDENT_BYTES} bytes")


def check_column_name(name: str) -> None:
    """Reject system column names and over-long names."""
    if name.lower() in SYSTEM_COLUMNS:
        raise RedshiftError(f'column name "{name}" conflicts with a system column name')
    check_identifier(name, "column")


def check_encoding(encoding: str, rs_type: RsType | None) -> None:
    """A known encoding keyword, and one the column's type accepts (where documented)."""
    if encoding not in ENCODINGS:
        raise RedshiftError(f'invalid encoding type "{encoding}"')
    if rs_type is None:
        return
    if encoding == "az64" and rs_type.kind not in _AZ64_KINDS:
        raise RedshiftError(f"encode type az64 is not supported for type {rs_type}")
    if encoding in ("text255", "text32k") and rs_type.kind != "VARCHAR":
        raise RedshiftError(f"encode type {encoding} is supported only for VARCHAR")


# --------------------------------------------------------------------------- column definitions


@dataclass
class ColumnDef:
    """A parsed column definition and its PostgreSQL translation."""

    name: str
    rs_type: RsType
    pg_sql: str = ""
    distkey: bool = False
    sortkey: bool = False


def parse_column_def(sql: str, toks: list[Token], domain_schema: str) -> ColumnDef:
    """Parse ``name type [ENCODE e] [DISTKEY] [SORTKEY] [constraints…]`` (one element).

    Column attributes and constraints: CREATE TABLE page (no CHECK constraints; IDENTITY
    (seed, step); COLLATE CASE_SENSITIVE|CASE_INSENSITIVE).
    """
    name = ident(toks[0])
    check_column_name(name)
    rs_type, i = parse_type(toks, 1)
    col = ColumnDef(name, rs_type)
    kept: list[str] = []
    run_start: int | None = None
    while i < len(toks):
        tok, skip, replacement = toks[i], 0, None
        if tok.is_word("encode"):
            check_encoding(toks[i + 1].value, rs_type)
            skip = 2
        elif tok.is_word("distkey", "sortkey"):
            setattr(col, tok.value, True)
            skip = 1
        elif tok.is_word("collate"):
            skip = 2
        elif tok.is_word("check"):
            raise RedshiftError("CHECK constraints are not supported by Redshift")
        elif tok.is_word("identity", "generated"):
            j = next(k for k in range(i, len(toks)) if toks[k].is_punct("("))
            seed, step = toks[j + 1].value, toks[j + 3].value
            replacement = (
                f"GENERATED BY DEFAULT AS IDENTITY (START WITH {seed} INCREMENT BY {step})"
            )
            skip = j + 5 - i
        if skip:
            if run_start is not None:
                kept.append(sql[run_start : toks[i - 1].end])
                run_start = None
            if replacement:
                kept.append(replacement)
            i += skip
            continue
        run_start = tok.start if run_start is None else run_start
        i += 1
    if run_start is not None:
        kept.append(sql[run_start : toks[-1].end])
    col.pg_sql = " ".join([quote_ident(name), rs_type.pg(domain_schema), *kept])
    return col


def split_top_level(toks: list[Token]) -> list[list[Token]]:
    """Split a token list at commas outside parentheses."""
    groups: list[list[Token]] = [[]]
    depth = 0
    for tok in toks:
        depth += 1 if tok.is_punct("(") else -1 if tok.is_punct(")") else 0
        if depth == 0 and tok.is_punct(","):
            groups.append([])
        else:
            groups[-1].append(tok)
    return [g for g in groups if g]


def _matching_paren(toks: list[Token], i: int) -> int:
    depth = 0
    for j in range(i, len(toks)):
        depth += 1 if toks[j].is_punct("(") else -1 if toks[j].is_punct(")") else 0
        if depth == 0:
            return j
    raise RedshiftError("syntax error: unbalanced parentheses")


# --------------------------------------------------------------------------- CREATE / ALTER


@dataclass
class DdlPlan:
    """What PostgreSQL should run for one Redshift DDL statement."""

    pg_sql: str | None  # None: nothing to run (a Redshift-only no-op such as ALTER DISTKEY)
    table: tuple[str, ...] = ()
    varbyte_domains: set[tuple[str, int]] = field(default_factory=set)
    alter_type: tuple[str, int] | None = None  # (column, VARCHAR length) of ALTER … TYPE


@dataclass
class _TableAttributes:
    diststyle: str | None = None
    distkey: list[str] = field(default_factory=list)
    sortkey: list[str] = field(default_factory=list)
    sort_style: str = "compound"


def _table_attributes(toks: list[Token]) -> _TableAttributes:
    """Parse DISTSTYLE / DISTKEY / [COMPOUND|INTERLEAVED] SORTKEY / ENCODE AUTO / BACKUP."""
    attrs, i = _TableAttributes(), 0
    while i < len(toks):
        tok, nxt = toks[i], toks[i + 1] if i + 1 < len(toks) else None
        if tok.is_word("diststyle") and nxt and nxt.is_word("auto", "even", "all", "key"):
            attrs.diststyle, i = nxt.value, i + 2
        elif tok.is_word("distkey"):
            names, i = paren_idents(toks, i + 1)
            attrs.distkey += names
        elif tok.is_word("compound", "interleaved") and nxt and nxt.is_word("sortkey"):
            attrs.sort_style = tok.value
            names, i = paren_idents(toks, i + 2)
            attrs.sortkey += names
        elif tok.is_word("sortkey") and nxt and nxt.is_word("auto"):
            i += 2
        elif tok.is_word("sortkey"):
            names, i = paren_idents(toks, i + 1)
            attrs.sortkey += names
        elif (tok.is_word("encode") and nxt and nxt.is_word("auto")) or (
            tok.is_word("backup") and nxt and nxt.is_word("yes", "no")
        ):
            i += 2
        else:
            raise RedshiftError(f"syntax error at or near {tok.value!r}")
    return attrs


def _check_keys(columns: list[ColumnDef], attrs: _TableAttributes) -> None:
    """Distribution and sort key rules of the CREATE TABLE page."""
    names = {c.name for c in columns}
    col_dist = [c.name for c in columns if c.distkey]
    col_sort = [c.name for c in columns if c.sortkey]
    if len(col_dist) + len(attrs.distkey) > 1:
        raise RedshiftError("only one DISTKEY may be defined for a table")
    if col_sort and attrs.sortkey:
        raise RedshiftError("SORTKEY defined both as a column attribute and a table attribute")
    for key in (*attrs.distkey, *attrs.sortkey):
        if key not in names:
            raise RedshiftError(f'column "{key}" named in DISTKEY/SORTKEY does not exist')
    has_distkey = bool(col_dist or attrs.distkey)
    if has_distkey and attrs.diststyle not in (None, "key"):
        raise RedshiftError(f"DISTSTYLE {attrs.diststyle.upper()} cannot have a DISTKEY")
    if attrs.diststyle == "key" and not has_distkey:
        raise RedshiftError("DISTSTYLE KEY requires a DISTKEY column")
    keys = attrs.sortkey or col_sort
    limit = MAX_INTERLEAVED if attrs.sort_style == "interleaved" else MAX_COMPOUND
    if len(keys) > limit:
        raise RedshiftError(f"{attrs.sort_style.upper()} SORTKEY takes at most {limit} columns")


CREATE_TABLE = re.compile(
    r"\s*CREATE\s+(?:(?:LOCAL\s+)?(?:TEMP|TEMPORARY)\s+)?TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?",
    re.IGNORECASE,
)


def translate_create_table(sql: str, default_schema: str) -> DdlPlan:
    """Check a Redshift CREATE TABLE and strip its Redshift-only clauses for PostgreSQL.

    Rules: https://docs.aws.amazon.com/redshift/latest/dg/r_CREATE_TABLE_NEW.html
    """
    head = CREATE_TABLE.match(sql)
    if head is None:
        raise RedshiftError("syntax error in CREATE TABLE")
    toks = [t for t in tokenize(sql) if not t.is_punct(";")]
    first = next(k for k, t in enumerate(toks) if t.start >= head.end())
    table, i = qualified_name(toks, first)
    check_identifier(table[-1], "table")
    if i >= len(toks) or not toks[i].is_punct("("):
        return DdlPlan(sql, table)  # CREATE TABLE … AS SELECT: run as written
    close = _matching_paren(toks, i)
    elements = split_top_level(toks[i + 1 : close])
    attrs = _table_attributes(toks[close + 1 :])
    if elements and elements[0][0].is_word("like"):
        return DdlPlan(sql[: toks[close].end], table)  # (LIKE parent): keys are inherited
    domain_schema = table[0] if len(table) > 1 else default_schema
    columns: list[ColumnDef] = []
    pieces: list[str] = []
    for element in elements:
        if element[0].is_word("check"):
            raise RedshiftError("CHECK constraints are not supported by Redshift")
        if element[0].is_word("primary", "unique", "foreign", "constraint"):
            pieces.append(sql[element[0].start : element[-1].end])
            continue
        col = parse_column_def(sql, element, domain_schema)
        columns.append(col)
        pieces.append(col.pg_sql)
    _check_keys(columns, attrs)
    domains = {
        (domain_schema, c.rs_type.length or 0) for c in columns if c.rs_type.kind == "VARBYTE"
    }
    pg_sql = sql[: toks[i].start] + "(" + ", ".join(pieces) + ")"
    return DdlPlan(pg_sql, table, domains)


_ALTER_NOOP = {"distkey", "diststyle", "sortkey", "compound", "interleaved", "encode"}


def translate_alter_table(sql: str, default_schema: str) -> DdlPlan:
    """Check a Redshift ALTER TABLE and translate it for PostgreSQL.

    Rules (https://docs.aws.amazon.com/redshift/latest/dg/r_ALTER_TABLE.html): ADD COLUMN
    adds one column and never a DISTKEY/SORTKEY; ALTER COLUMN only changes a VARCHAR's size
    (``TYPE varchar(n)``) or its ENCODE; ALTER DISTKEY/DISTSTYLE/SORTKEY/ENCODE are no-ops here.
    """
    toks = [t for t in tokenize(sql) if not t.is_punct(";")]
    table, i = qualified_name(toks, 2)
    table_sql = ".".join(quote_ident(p) for p in table)
    words = [t.value if t.kind == "word" else "" for t in toks[i : i + 3]] + ["", ""]
    if words[0] == "add" and words[1] not in ("constraint", "primary", "unique", "foreign"):
        j = i + (2 if words[1] == "column" else 1)
        if len(split_top_level(toks[j:])) > 1:
            raise RedshiftError("ALTER TABLE ADD COLUMN adds only one column per statement")
        domain_schema = table[0] if len(table) > 1 else default_schema
        col = parse_column_def(sql, toks[j:], domain_schema)
        if col.distkey or col.sortkey:
            raise RedshiftError("ALTER TABLE ADD COLUMN cannot add a DISTKEY or SORTKEY column")
        domains = (
            {(domain_schema, col.rs_type.length or 0)} if col.rs_type.kind == "VARBYTE" else set()
        )
        return DdlPlan(f"ALTER TABLE {table_sql} ADD COLUMN {col.pg_sql}", table, domains)
    if words[0] == "alter" and words[1] in _ALTER_NOOP:
        return DdlPlan(None, table)
    if words[0] == "alter":
        j = i + (2 if words[1] == "column" else 1)
        column = ident(toks[j])
        action = toks[j + 1] if j + 1 < len(toks) else None
        if action is not None and action.is_word("encode"):
            check_encoding(toks[j + 2].value, None)
            return DdlPlan(None, table)
        if action is None or not action.is_word("type"):
            raise RedshiftError("ALTER TABLE ALTER COLUMN supports only TYPE and ENCODE")
        rs_type, end = parse_type(toks, j + 2)
        if end < len(toks):
            word = toks[end].value.upper()
            raise RedshiftError(f"ALTER TABLE ALTER COLUMN does not support {word} (only TYPE)")
        if rs_type.kind != "VARCHAR":
            raise RedshiftError(f"ALTER COLUMN TYPE {rs_type} is not supported: only VARCHAR(n)")
        pg_sql = f"ALTER TABLE {table_sql} ALTER COLUMN {quote_ident(column)} TYPE {rs_type}"
        return DdlPlan(pg_sql, table, alter_type=(column, rs_type.length or 0))
    return DdlPlan(sql, table)  # RENAME, DROP COLUMN, OWNER TO, ADD CONSTRAINT …
