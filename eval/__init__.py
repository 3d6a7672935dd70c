"""Evaluation: IR metrics through pytrec_eval and BEIR-layout data sets."""

from __future__ import annotations

from eval.beir import evaluate
from eval.metrics import evaluate_run

__all__ = ["evaluate", "evaluate_run"]
