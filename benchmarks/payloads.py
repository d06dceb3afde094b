"""The text payload of the end-to-end and deployment benchmarks: text that compresses as real text does.

Before, the text payload was one character repeated S times. gzip and PostgreSQL's TOAST compression
shrink that about a thousand-fold (the ``xcom`` table grew 6 MB for 500 MB pushed), which flatters
every backend that compresses and is not what a 50 MB string of a user looks like. This text is CSV
rows with seeded pseudo-random fields: gzip shrinks it about 2.9x, as it does exported tables and logs.

The first MiB is generated once per process and then repeated: its period is far beyond the window
of gzip (32 KiB), PostgreSQL's pglz (4 KiB) and lz4 (64 KiB), so no compressor gains anything from
the repetition, and a 50 MB value costs a join, not seconds of Python. ``variant`` (a map index)
starts each value at a different row, so values differ. The function is copied into the generated
DAG files by ``source()``: a DAG file must not import the benchmarks package.
"""

from __future__ import annotations

import inspect
import textwrap


def text_payload(size: int, variant: int) -> str:
    """``size`` characters of CSV text (ASCII, so also ``size`` bytes), the same for the same arguments."""
    block = getattr(text_payload, "block", None)
    if block is None:
        import random

        rng = random.Random(20261122)
        regions = ("emea", "amer", "apac", "latam")
        lines, total, n = [], 0, 0
        while total < 1 << 20:
            line = (
                f"{n},customer-{rng.randrange(10**8):08d},{rng.randrange(10**6) / 100:.2f},"
                f"{regions[rng.randrange(4)]},sku-{rng.randrange(10**5):05d},{rng.randrange(1, 50)}\n"
            )
            lines.append(line)
            total += len(line)
            n += 1
        block = "".join(lines)
        text_payload.block = block  # type: ignore[attr-defined]
    start = variant * 7919 % len(block)
    pieces = [block[start : start + size]]
    left = size - len(pieces[0])
    while left > 0:
        pieces.append(block[:left])
        left -= len(pieces[-1])
    return "".join(pieces)  # one allocation of exactly size characters


def source() -> str:
    """text_payload's source, for a generated DAG file."""
    return textwrap.dedent(inspect.getsource(text_payload))
