"""The Rust panic filter of native_stderr: a panic's lines, and only those."""

from __future__ import annotations

from src.utils.native_output import PanicFilter

PANIC = """thread '<unnamed>' (29457) panicked at /root/.cargo/src/mysql_common/mod.rs:122:23:
Could not retrieve chrono::NaiveDate from Value
stack backtrace:
   0: rust_begin_unwind
             at /rustc/9b00956e/library/std/src/panicking.rs:645:5
   1: core::panicking::panic_fmt
note: Some details are omitted, run with `RUST_BACKTRACE=full` for a verbose backtrace.
"""
SHORT = """thread 'main' panicked at src/main.rs:2:5:
explicit panic
note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace
"""


def kept(text: str) -> list[str]:
    panics = PanicFilter()
    return [line for line in text.splitlines(keepends=True) if not panics.is_panic(line)]


def test_a_panic_with_its_backtrace_is_dropped_and_what_follows_kept() -> None:
    assert kept("before\n" + PANIC + "after\n") == ["before\n", "after\n"]
    assert kept(SHORT + "  indented child output\n") == ["  indented child output\n"]


def test_lines_of_a_child_are_kept() -> None:
    text = "note: a child's note\n   0: a numbered line\nthread pool started\n"
    assert kept(text) == text.splitlines(keepends=True)


def test_a_message_without_an_end_stops_being_dropped() -> None:
    lines = ["thread 'x' panicked at a.rs:1:1:\n"] + [f"line {n}\n" for n in range(30)]
    assert kept("".join(lines)) == lines[21:]
