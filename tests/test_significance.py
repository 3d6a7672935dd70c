"""Paired significance tests (``eval.significance``) and ``winnow eval compare``."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest

from eval.significance import average_runs, paired_comparison
from retrieval.cli import main


def exact_randomisation_p(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sided paired randomisation test by enumerating every sign flip of the differences."""
    diff = b - a
    observed = abs(diff.mean())
    extreme = 0
    flips = list(itertools.product((1.0, -1.0), repeat=len(diff)))
    for signs in flips:
        if abs((np.array(signs) * diff).mean()) >= observed - 1e-12:
            extreme += 1
    return extreme / len(flips)


def test_randomisation_p_matches_exact_enumeration() -> None:
    rng = np.random.default_rng(3)
    a = rng.uniform(0, 1, 9)
    b = a + rng.normal(0.08, 0.1, 9)
    queries = [f"q{i}" for i in range(9)]
    c = paired_comparison(
        dict(zip(queries, a, strict=True)), dict(zip(queries, b, strict=True)), n_resamples=10_000
    )
    assert c.p_randomization == pytest.approx(exact_randomisation_p(a, b), abs=1e-9)  # 512 < resamples: exact
    assert c.difference == pytest.approx(float((b - a).mean()))
    assert c.wins + c.ties + c.losses == 9


def test_a_planted_gain_is_significant_and_no_change_is_not() -> None:
    rng = np.random.default_rng(0)
    queries = [f"q{i}" for i in range(200)]
    base = dict(zip(queries, rng.uniform(0, 1, 200), strict=True))
    better = {q: v + 0.05 + rng.normal(0, 0.05) for q, v in base.items()}
    c = paired_comparison(base, better, n_resamples=2000)
    assert c.p_randomization < 0.001 and c.p_ttest < 0.001 and c.significant()
    assert 0 < c.ci_low < 0.05 < c.ci_high < 0.1
    same = paired_comparison(base, dict(base), n_resamples=2000)
    assert same.p_randomization == 1.0 and same.difference == 0.0 and same.ties == 200
    # symmetric changes: half the queries gain what the other half lose
    swapped = {q: v + (0.1 if i % 2 else -0.1) for i, (q, v) in enumerate(base.items())}
    c = paired_comparison(base, swapped, n_resamples=2000)
    assert abs(c.difference) < 1e-12 and c.p_randomization > 0.9 and not c.significant()
    assert c.ci_low < 0 < c.ci_high


def test_unpaired_runs_are_refused_with_the_queries_named() -> None:
    with pytest.raises(ValueError, match=r"different queries.*'q3'"):
        paired_comparison({"q1": 0.1, "q2": 0.2}, {"q1": 0.1, "q3": 0.5})
    with pytest.raises(ValueError, match=r"seed2.json was scored on other queries.*'q2'"):
        average_runs([{"q1": 0.1, "q2": 0.2}, {"q1": 0.3}], ["seed1.json", "seed2.json"])


def test_average_runs_is_the_per_query_mean() -> None:
    assert average_runs([{"a": 0.2, "b": 1.0}, {"a": 0.4, "b": 0.0}]) == pytest.approx({"a": 0.3, "b": 0.5})


def write_result(path, model: str, scores: dict[str, float]) -> str:
    mean = sum(scores.values()) / len(scores)
    path.write_text(
        json.dumps({"model": model, "metrics": {"ndcg@10": mean}, "per_query": {"ndcg@10": scores}})
    )
    return str(path)


def test_eval_compare_cli_pools_seeds_and_writes_json(tmp_path, capsys) -> None:
    rng = np.random.default_rng(1)
    queries = [f"q{i}" for i in range(60)]
    base = {q: float(rng.uniform(0.2, 0.8)) for q in queries}
    b1 = write_result(tmp_path / "b1.json", "base", base)
    b2 = write_result(tmp_path / "b2.json", "base", {q: v + 0.02 for q, v in base.items()})
    other = write_result(tmp_path / "o.json", "trained", {q: v + 0.2 for q, v in base.items()})
    out = tmp_path / "cmp.json"
    assert main(["eval", "compare", f"{b1},{b2}", other, "--resamples", "500", "--output", str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("| run | queries | ndcg@10 | diff | 95% CI |")
    assert lines[2].startswith("| base (mean of 2 runs) | 60 |")
    assert lines[3].startswith("| trained | 60 |") and "+0.1900" in lines[3] and "60/0/0" in lines[3]
    saved = json.loads(out.read_text())["comparisons"][0]
    assert saved["difference"] == pytest.approx(0.19) and saved["p_randomization"] < 0.01


def test_eval_compare_names_a_file_without_per_query_scores(tmp_path, capsys) -> None:
    old = tmp_path / "old.json"
    old.write_text(json.dumps({"model": "m", "metrics": {"ndcg@10": 0.5}}))
    new = write_result(tmp_path / "new.json", "n", {"q": 0.5})
    assert main(["eval", "compare", str(old), new]) == 2
    err = capsys.readouterr().err
    assert "old.json" in err and "no per-query scores" in err
    assert main(["eval", "compare", new, new, "--metric", "recall@100"]) == 2
    assert "no per-query 'recall@100'; it has ndcg@10" in capsys.readouterr().err
