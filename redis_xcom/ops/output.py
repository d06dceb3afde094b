"""What the ops commands share: human or --json output, sizes, the y/N question, exit codes."""

from __future__ import annotations

import json
import sys
from typing import Any

OK = 0
PROBLEM = 1  # failed, or found a problem
USAGE = 2  # bad usage (argparse exits 2 too)


class Output:
    """Lines for a person on stdout, or one JSON document for scripts (--json); notes go to stderr."""

    def __init__(self, as_json: bool) -> None:
        self.as_json = as_json

    def line(self, text: str = "") -> None:
        if not self.as_json:
            print(text, flush=True)

    def note(self, text: str) -> None:
        """A message for the person running the command, never part of the JSON document."""
        print(text, file=sys.stderr, flush=True)

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
