"""Evaluation: IR metrics through pytrec_eval, BEIR-layout data sets and paired significance tests."""

from __future__ import annotations

from eval.beir import evaluate
from eval.metrics import evaluate_run
from eval.significance import paired_comparison

__all__ = ["evaluate", "evaluate_run", "paired_comparison"]
