"""What the ops commands share: human or --json output, sizes, the y/N question, exit codes."""

from __future__ import annotations

import json
import sys
from typing import Any

OK = 0
PROBLEM = 1  # failed, or found a problem
USAGE = 2  # bad usage (argparse exits 2 too)


# Control characters (C0, DEL, C1) and bidirectional overrides: ids read back from Redis keys are
# written by others and must not drive the terminal (escape sequences) or reorder what is shown.
_UNPRINTABLE = {
    code: f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"
    for code in [*range(0x20), *range(0x7F, 0xA0), *range(0x202A, 0x202F), *range(0x2066, 0x206A)]
    if code not in (0x09, 0x0A)  # tabs and line breaks are the commands' own layout
}


def printable(text: str) -> str:
    """text with every control character written as its escape (\\x1b for ESC)."""
    return text.translate(_UNPRINTABLE)


class Output:
    """Lines for a person on stdout, or one JSON document for scripts (--json); notes go to stderr."""

    def __init__(self, as_json: bool) -> None:
        self.as_json = as_json

    def line(self, text: str = "") -> None:
        if not self.as_json:
            print(printable(text), flush=True)

    def note(self, text: str) -> None:
        """A message for the person running the command, never part of the JSON document."""
        print(printable(text), file=sys.stderr, flush=True)

    def document(self, data: dict[str, Any]) -> None:
        if self.as_json:
            print(json.dumps(data, indent=2, sort_keys=True, default=str), flush=True)


def human_bytes(size: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(size) < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def confirm(question: str, assume_yes: bool, out: Output) -> int | None:
    """None to go ahead; else the exit code: USAGE without a terminal and without --yes, PROBLEM on 'no'."""
    if assume_yes:
        return None
    if not sys.stdin.isatty():
        out.note(f"{question} Not asked: there is no terminal. Pass --yes to go ahead.")
        return USAGE
    answer = input(f"{question} [y/N] ").strip().lower()
    if answer in ("y", "yes"):
        return None
    out.note("Nothing was deleted.")
    return PROBLEM
