"""Product benchmarks: search, encode and train speed, sparse quality and sparse search speed.

Each module runs as ``python -m bench.NAME`` from the repository root, prints a Markdown table and,
with ``--json FILE``, writes the figures beside the command that produced them
(:func:`bench.common.save_record`). ``make bench`` runs them all.
"""
