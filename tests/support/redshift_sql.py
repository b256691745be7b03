"""Redshift SQL rules for the test double: the error class, a tokenizer, the COPY parser.

Pure functions, no database: :mod:`tests.support.redshift_double` calls them before it lets
PostgreSQL run anything. Each rule cites the AWS page it comes from; where the documentation
is silent the rule is strict and says so.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field

import psycopg2


class RedshiftError(psycopg2.InternalError):
    """What Redshift raises: a server error (SQLSTATE XX000 → psycopg2 ``InternalError``).

    A subclass of ``psycopg2.InternalError`` (hence of ``psycopg2.Error`` and ``Exception``)
    so loader code written against a real cluster handles it the same way.
    """


# --------------------------------------------------------------------------- tokenizer


@dataclass(frozen=True)
class Token:
    """One SQL token. ``value``: words lower-cased, quoted identifiers/strings unescaped."""

    kind: str  # "word" | "qident" | "string" | "number" | "punct"
    value: str
    start: int
    end: int

    def is_word(self, *words: str) -> bool:
        return self.kind == "word" and self.value in words

    def is_punct(self, char: str) -> bool:
        return self.kind == "punct" and self.value == char


_WORD = re.compile(r"[A-Za-z_#][A-Za-z0-9_$#]*")
_NUMBER = re.compile(r"\d+(?:\.\d*)?(?:[eE][+-]?\d+)?")
_DOLLAR = re.compile(r"\$(?:[A-Za-z_][A-Za-z0-9_]*)?\$")


def _quoted(sql: str, start: int, quote: str) -> tuple[str, int]:
    """Unescape a quoted run starting at ``start`` (doubled quote = literal quote)."""
    parts: list[str] = []
    i = start + 1
    while True:
        j = sql.find(quote, i)
        if j < 0:
            raise RedshiftError(
                f"unterminated quoted string at or near {sql[start : start + 20]!r}"
            )
        parts.append(sql[i:j])
        if sql.startswith(quote * 2, j):
            parts.append(quote)
            i = j + 2
            continue
        return "".join(parts), j + 1


def tokenize(sql: str) -> list[Token]:
    """Split SQL into tokens, skipping whitespace and comments."""
    tokens: list[Token] = []
    i, n = 0, len(sql)
    while i < n:
        ch = sql[i]
        if ch.isspace():
            i += 1
        elif sql.startswith("--", i):
            j = sql.find("\n", i)
            i = n if j < 0 else j + 1
        elif sql.startswith("/*", i):
            j = sql.find("*/", i + 2)
            if j < 0:
                raise RedshiftError("unterminated /* comment")
            i = j + 2
        elif ch in "'\"":
            value, end = _quoted(sql, i, ch)
            tokens.append(Token("string" if ch == "'" else "qident", value, i, end))
            i = end
        elif (m := _DOLLAR.match(sql, i)) is not None:
            close = sql.find(m.group(0), m.end())
            if close < 0:
                raise RedshiftError("unterminated dollar-quoted string")
            end = close + len(m.group(0))
            tokens.append(Token("string", sql[m.end() : close], i, end))
            i = end
        elif (m := _WORD.match(sql, i)) is not None:
            tokens.append(Token("word", m.group(0).lower(), i, m.end()))
            i = m.end()
        elif (m := _NUMBER.match(sql, i)) is not None:
            tokens.append(Token("number", m.group(0), i, m.end()))
            i = m.end()
        else:
            tokens.append(Token("punct", ch, i, i + 1))
            i += 1
    return tokens


def split_statements(sql: str) -> list[str]:
    """The statements of a (possibly multi-statement) string, split at top-level ``;``."""
    pieces, start = [], 0
    for tok in tokenize(sql):
        if tok.is_punct(";"):
            pieces.append(sql[start : tok.start])
            start = tok.end
    pieces.append(sql[start:])
    return [p.strip() for p in pieces if tokenize(p)]


def quote_ident(name: str) -> str:
    """Double-quote an identifier for PostgreSQL."""
    return '"' + name.replace('"', '""') + '"'


def ident(tok: Token) -> str:
    if tok.kind not in ("word", "qident"):
        raise RedshiftError(f"syntax error at or near {tok.value!r}")
    return tok.value  # words are already folded to lower case


def qualified_name(toks: list[Token], i: int) -> tuple[tuple[str, ...], int]:
    """Parse ``ident ( . ident )*`` at ``i``; return the parts and the next index."""
    if i >= len(toks):
        raise RedshiftError("syntax error at end of input")
    parts = [ident(toks[i])]
    i += 1
    while i + 1 < len(toks) and toks[i].is_punct("."):
        parts.append(ident(toks[i + 1]))
        i += 2
    return tuple(parts), i


def paren_idents(toks: list[Token], i: int) -> tuple[list[str], int]:
    """Parse ``( ident [, ident]* )`` at ``i``."""
    if i >= len(toks) or not toks[i].is_punct("("):
        raise RedshiftError("syntax error: expected a parenthesised column list")
    names, i = [], i + 1
    while True:
        names.append(ident(toks[i]))
        i += 1
        if toks[i].is_punct(")"):
            return names, i + 1
        if not toks[i].is_punct(","):
            raise RedshiftError(f"syntax error at or near {toks[i].value!r}")
        i += 1


# --------------------------------------------------------------------------- PostgreSQL-only SQL


# Statements Redshift rejects though PostgreSQL runs them (a loader tested only on PostgreSQL
# would ship them). INSERT has no ON CONFLICT and no RETURNING:
#   https://docs.aws.amazon.com/redshift/latest/dg/r_INSERT_30.html
# no indexes:
#   https://docs.aws.amazon.com/redshift/latest/dg/c_unsupported-postgresql-features.html
# no advisory lock functions:
#   https://docs.aws.amazon.com/redshift/latest/dg/c_unsupported-postgresql-functions.html
# COPY reads from S3/EMR/SSH/DynamoDB only, never STDIN (see parse_copy):
#   https://docs.aws.amazon.com/redshift/latest/dg/r_COPY.html
def check_postgres_only(toks: list[Token]) -> None:
    """Reject PostgreSQL-only constructs Redshift does not accept."""
    words = [t.value if t.kind == "word" else "" for t in toks]
    head = words[:1]
    for a, b in itertools.pairwise(words):
        if (a, b) == ("on", "conflict"):
            raise RedshiftError('syntax error at or near "ON CONFLICT" (not supported by Redshift)')
    if head and head[0] in ("insert", "update", "delete") and "returning" in words:
        raise RedshiftError('syntax error at or near "RETURNING" (not supported by Redshift)')
    if words[:2] == ["create", "index"] or words[:3] == ["create", "unique", "index"]:
        raise RedshiftError("CREATE INDEX is not supported by Redshift")
    if any(w.startswith("pg_advisory") for w in words):
        raise RedshiftError("function pg_advisory_* does not exist in Redshift")
    for before, tok in itertools.pairwise(toks):
        # BIT / BIT VARYING are unsupported PostgreSQL types:
        # https://docs.aws.amazon.com/redshift/latest/dg/c_unsupported-postgresql-datatypes.html
        if tok.is_word("bit") and (before.is_punct(":") or before.is_word("as")):
            raise RedshiftError('type "bit" is not supported by Redshift')
        # COLLATE takes case_sensitive / case_insensitive, never a PostgreSQL collation:
        # https://docs.aws.amazon.com/redshift/latest/dg/r_COLLATE.html
        if before.is_word("collate") and tok.kind == "qident":
            raise RedshiftError(f'collation "{tok.value}" does not exist in Redshift')


# --------------------------------------------------------------------------- COPY

# Only these parameters apply to COPY from Parquet ("Only the following COPY parameters are
# supported"; REGION and MAXERROR are called out as unsupported for columnar data):
#   https://docs.aws.amazon.com/redshift/latest/dg/copy-usage_notes-copy-from-columnar.html
COPY_ALLOWED = frozenset(
    {"iam_role", "credentials", "manifest", "format", "serializetojson", "statupdate"}
    | {"acceptinvchars", "fillrecord", "explicit_ids"}
)
_COPY_OTHER = frozenset(
    {"truncatecolumns", "emptyasnull", "blanksasnull", "roundec", "maxerror", "region", "csv"}
    | {"delimiter", "fixedwidth", "json", "avro", "shapefile", "ignoreheader", "dateformat"}
    | {"timeformat", "acceptanydate", "encoding", "escape", "null", "removequotes", "noload"}
    | {"trimblanks", "ignoreblanklines", "compupdate", "comprows", "gzip", "bzip2", "lzop"}
    | {"zstd", "readratio", "ssh", "encrypted", "quote", "access_key_id"}
    | {"secret_access_key", "session_token", "master_symmetric_key", "orc"}
)
_IAM_ROLE = re.compile(r"arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]+")
_KEY_CREDS = re.compile(
    r"aws_access_key_id=[^;]+;aws_secret_access_key=[^;]+(;token=[^;]+)?", re.IGNORECASE
)


@dataclass(frozen=True)
class CopyCommand:
    """A parsed ``COPY table FROM 's3://…' … FORMAT AS PARQUET MANIFEST``."""

    table: tuple[str, ...]
    source_url: str
    options: dict[str, str | None] = field(default_factory=dict)

    @property
    def table_sql(self) -> str:
        return ".".join(quote_ident(p) for p in self.table)


def _check_role_list(value: str) -> None:
    """IAM_ROLE 'default', one role ARN or a comma-separated chain.

    https://docs.aws.amazon.com/redshift/latest/dg/copy-parameters-authorization.html
    """
    if value.lower() == "default":
        return
    if not all(_IAM_ROLE.fullmatch(r.strip()) for r in value.split(",")):
        raise RedshiftError("Invalid IAM_ROLE: expected 'arn:aws:iam::<account>:role/<name>'")


def _check_credentials(value: str) -> None:
    """CREDENTIALS 'aws_iam_role=…' or key pair (never echoed: it holds a secret)."""
    if value.lower().startswith("aws_iam_role="):
        _check_role_list(value.split("=", 1)[1])
    elif not _KEY_CREDS.fullmatch(value):
        raise RedshiftError(
            "Invalid credentials. Must be of the format: credentials "
            "'aws_iam_role=...' or 'aws_access_key_id=...;aws_secret_access_key=...'"
        )


def parse_copy(sql: str) -> CopyCommand:
    """Parse and validate a Parquet manifest COPY; raise :class:`RedshiftError` otherwise."""
    toks = [t for t in tokenize(sql) if not t.is_punct(";")]
    if not toks or not toks[0].is_word("copy"):
        raise RedshiftError("not a COPY statement")
    table, i = qualified_name(toks, 1)
    if i < len(toks) and toks[i].is_punct("("):
        # Strict: the columnar allowlist has no column list; the loader never sends one.
        raise RedshiftError("COPY with a column list is not supported for PARQUET (double: strict)")
    if i >= len(toks) or not toks[i].is_word("from"):
        raise RedshiftError("syntax error: expected FROM")
    i += 1
    if i < len(toks) and toks[i].is_word("stdin"):
        raise RedshiftError("COPY FROM STDIN is not supported by Redshift")
    if i >= len(toks) or toks[i].kind != "string" or not toks[i].value.startswith("s3://"):
        raise RedshiftError("COPY source must be an 's3://bucket/key' string")
    source, i = toks[i].value, i + 1
    options: dict[str, str | None] = {}
    while i < len(toks):
        tok = toks[i]
        if tok.kind != "word":
            raise RedshiftError(f"syntax error at or near {tok.value!r}")
        key, value, i = tok.value, None, i + 1
        if key == "with" and i < len(toks) and toks[i].is_word("credentials"):
            key, i = "credentials", i + 1
        if key == "parquet":
            raise RedshiftError("syntax error at or near 'PARQUET': write FORMAT AS PARQUET")
        if key in _COPY_OTHER:
            raise RedshiftError(f"{key.upper()} argument is not supported for PARQUET based COPY")
        if key not in COPY_ALLOWED:
            raise RedshiftError(f"syntax error at or near {key.upper()!r}")
        if key in options:
            raise RedshiftError(f"conflicting or redundant options: {key.upper()}")
        nxt = toks[i] if i < len(toks) else None
        if key in ("credentials", "format", "acceptinvchars") and nxt and nxt.is_word("as"):
            i += 1
            nxt = toks[i] if i < len(toks) else None
        if key in ("iam_role", "credentials", "format"):
            if nxt is None or nxt.kind not in ("string", "word"):
                raise RedshiftError(f"syntax error: {key.upper()} needs a value")
            value, i = nxt.value, i + 1
        elif nxt and (
            (key == "statupdate" and nxt.is_word("on", "off", "true", "false"))
            or (key == "acceptinvchars" and nxt.kind == "string")
        ):
            value, i = nxt.value, i + 1
        options[key] = value
    if (options.get("format") or "").lower() != "parquet":
        raise RedshiftError("COPY must say FORMAT AS PARQUET (the double loads Parquet only)")
    if "manifest" not in options:
        raise RedshiftError("COPY without MANIFEST: the loader must name its files in a manifest")
    if ("iam_role" in options) == ("credentials" in options):
        raise RedshiftError("exactly one of IAM_ROLE or CREDENTIALS must be given")
    if "iam_role" in options:
        _check_role_list(options["iam_role"] or "")
    else:
        _check_credentials(options["credentials"] or "")
    return CopyCommand(table=table, source_url=source, options=options)
