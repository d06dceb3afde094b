"""redis-xcom benchmark suite: programs that print and record numbers, never timed tests.

Run everything with ``python -m benchmarks`` (``--smoke`` for the tiny CI size, ``--redis-url`` to
use a Redis of your own). Results land in ``benchmarks/results/``: one JSON document per
benchmark with the raw figures, ``RESULTS.md`` (every table), ``SUMMARY.md`` (the headline table the
docs and the README quote) and ``chart.png``.
"""
