"""Reading configuration text: input limits, YAML alias expansion, ``${VAR}`` substitution.

``${NAME}`` and ``${NAME:-default}`` are resolved after YAML parsing, in
string values only, from an allowlist of prefixes, and fail closed;
``$${X}`` is a literal ``${X}``. A file may not exceed :data:`MAX_FILE_BYTES`
nor expand (through aliases) to more than :data:`MAX_VALUES` values.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from src.config.config_validation import Problems, join_path
from src.utils.naming import shown

ALLOWED_PREFIXES = (
    "BACKUP_",
    "CONFIG_",
    "DB_",
    "DB2_",
    "CONN_",
    "SSH_",
    "REDSHIFT_",
    "MYSQL_",
    "AWS_",
    "S3_",
)

_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Input limits: a configuration file is small, and YAML aliases must not multiply it.
MAX_FILE_BYTES = 1_048_576
MAX_VALUES = 100_000


def _closing_brace(text: str, start: int) -> int:
    """The index of the ``}`` closing a ``${`` whose body starts at ``start`` (-1: none)."""
    depth = 1
    i = start
    while i < len(text):
        if text.startswith("${", i):
            depth += 1
            i += 2
            continue
        if text[i] == "}":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return -1


def expanded_size(data: Any, limit: int) -> int:
    """How many values ``data`` holds with every alias expanded (stops counting past ``limit``).

    PyYAML shares an aliased node instead of copying it, so the document is
    small in memory; walking it (substitution, validation) would visit every
    copy. Sizes are memoised per shared node, so this costs the unique nodes only.
    """
    sizes: dict[int, int] = {}

    def size(node: Any) -> int:
        if not isinstance(node, dict | list):
            return 1
        known = sizes.get(id(node))
        if known is not None:
            return known
        children = node.values() if isinstance(node, dict) else node
        total = 1
        for child in children:
            total += size(child)
            if total > limit:
                break
        sizes[id(node)] = total
        return total

    return size(data)


def substitute(
    value: Any, env: Mapping[str, str], file: str, problems: Problems, path: str = ""
) -> Any:
    """Replace ``${VAR}`` references in every string value, recursively."""
    if isinstance(value, dict):
        return {k: substitute(v, env, file, problems, join_path(path, k)) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute(v, env, file, problems, join_path(path, i)) for i, v in enumerate(value)]
    if not isinstance(value, str) or "${" not in value:
        return value
    return _interpolate(value, env, file, path, problems)


def _interpolate(
    text: str, env: Mapping[str, str], file: str, path: str, problems: Problems
) -> str:
    """``${NAME}`` and ``${NAME:-default}`` resolved, ``$${X}`` kept as ``${X}``.

    A default may itself hold references (``${DB_A:-${DB_B}}``): they are
    resolved under the same allowlist. Braces are matched, so a ``}`` in a
    default ends nothing early.
    """
    out: list[str] = []
    i = 0
    while i < len(text):
        literal = text.startswith("$${", i)
        if not literal and not text.startswith("${", i):
            out.append(text[i])
            i += 1
            continue
        start = i + (3 if literal else 2)
        end = _closing_brace(text, start)
        if end < 0:
            problems.error(file, path, f"'${{' without its closing '}}' in {shown(text)}")
            return ""
        body = text[start:end]
        out.append("${" + body + "}" if literal else _reference(body, env, file, path, problems))
        i = end + 1
    return "".join(out)


def _reference(body: str, env: Mapping[str, str], file: str, path: str, problems: Problems) -> str:
    """The value of one ``${…}`` body: ``NAME`` or ``NAME:-default``."""
    name, has_default, default = body.partition(":-")
    if not _NAME_RE.match(name):
        problems.error(file, path, f"'${{{shown(body)}}}' is not a valid variable reference")
        return ""
    if not name.startswith(ALLOWED_PREFIXES):
        problems.error(
            file,
            path,
            f"variable {name} is not allowed here "
            f"(names must start with one of {', '.join(ALLOWED_PREFIXES)})",
        )
        return ""
    resolved = env.get(name)
    if resolved is None:
        if not has_default:
            problems.error(file, path, f"variable {name} is not set and has no default")
            return ""
        resolved = _interpolate(default, env, file, path, problems) if "${" in default else default
    if "\n" in resolved or "\r" in resolved:
        problems.error(file, path, f"variable {name} contains a newline")
        return ""
    return resolved
