"""Research and selection scripts behind the tables of docs/results.md (see experiments/README.md).

Each module runs as ``python -m experiments.NAME`` from the repository root.
"""
