"""A progress bar on stderr for the commands that walk the keyspace, shown only on a terminal."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol


class Progress(Protocol):
    def advance(self, count: int) -> None: ...


class _Silent:
    def advance(self, count: int) -> None:
        pass


class _Bar:
    def __init__(self, bar: object, task: object) -> None:
        self._bar = bar
        self._task = task

    def advance(self, count: int) -> None:
        self._bar.advance(self._task, count)  # type: ignore[attr-defined]


@contextmanager
def progress(description: str, total: int | None) -> Iterator[Progress]:
    """Advance it by the keys handled; total is DBSIZE (an upper bound), None when unknown."""
    if not sys.stderr.isatty():
        yield _Silent()  # scripts and pipes get no escape codes
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    )
    with bar:
        yield _Bar(bar, bar.add_task(description, total=total))
