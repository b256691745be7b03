"""Plain fixed-width tables for the commands' text output (``--json`` gives the data)."""

from __future__ import annotations

from collections.abc import Collection, Sequence


def render_table(
    rows: Sequence[Sequence[str]],
    *,
    header: Sequence[str] | None = None,
    right: Collection[int] = (),
) -> list[str]:
    """One line per row, columns two spaces apart, ``right`` columns right-aligned.

    Plain text (no colour, no box drawing) so the output stays greppable in
    cron mail and CI logs; trailing spaces are stripped.
    """
    table = [list(header)] if header else []
    table += [list(row) for row in rows]
    if not table:
        return []
    widths = [max(len(line[i]) for line in table) for i in range(len(table[0]))]
    return [
        "  ".join(
            cell.rjust(widths[i]) if i in right else cell.ljust(widths[i])
            for i, cell in enumerate(line)
        ).rstrip()
        for line in table
    ]
