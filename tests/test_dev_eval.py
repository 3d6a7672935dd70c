"""Dev scoring during training: the ``full`` protocol is ``winnow eval beir`` on the model in memory."""

from __future__ import annotations

from pathlib import Path

import pytest
from sentence_transformers import SentenceTransformer

from eval.beir import evaluate
from retrieval.encoders import load_encoder
from retrieval.retriever import Retriever
from tests.conftest import write_beir
from trainers.dev import (
    FULL_METRIC,
    SAMPLE_METRIC,
    BeirDevEvaluator,
    build_dev_evaluator,
    dev_metric,
    dev_score,
)


@pytest.fixture
def dev_beir(tmp_path: Path, monkeypatch) -> Path:
    monkeypatch.setenv("WINNOW_DATA", str(tmp_path))
    return write_beir(tmp_path / "beir" / "tiny", split="dev")


def test_full_protocol_scores_as_winnow_eval_beir(dev_beir: Path, tiny_model_dir: Path) -> None:
    model = SentenceTransformer(str(tiny_model_dir), device="cpu")
    model.max_seq_length = 8  # as if training truncated harder than inference
    evaluator = BeirDevEvaluator("tiny", "dev", max_length=64)
    metrics = evaluator(model)
    assert model.max_seq_length == 8, "the training length must be restored after scoring"
    reference = evaluate(Retriever(load_encoder(tiny_model_dir, device="cpu")), dev_beir, "dev")
    # Same corpus, queries, graded qrels and metric as the report (q3 has relevance 2 and 1).
    assert metrics["dev_ndcg@10"] == pytest.approx(reference["metrics"]["ndcg@10"], abs=1e-6)
    assert metrics["dev_recall@100"] == pytest.approx(reference["metrics"]["recall@100"], abs=1e-6)
    assert evaluator.primary_metric == "dev_ndcg@10"
    assert dev_metric(evaluator) == FULL_METRIC


def test_max_queries_takes_the_first_judged_queries_by_id(dev_beir: Path, tiny_model_dir: Path) -> None:
    evaluator = BeirDevEvaluator("tiny", "dev", max_queries=2)
    assert evaluator.query_ids == ["q1", "q2"]
    model = SentenceTransformer(str(tiny_model_dir), device="cpu")
    reference = evaluate(
        Retriever(load_encoder(tiny_model_dir, device="cpu")), dev_beir, "dev", query_ids=["q1", "q2"]
    )
    assert reference["n_queries"] == 2
    assert evaluator(model)["dev_ndcg@10"] == pytest.approx(reference["metrics"]["ndcg@10"], abs=1e-6)


def test_protocol_choice(dev_beir: Path) -> None:
    assert isinstance(build_dev_evaluator("tiny", "dev", corpus="full"), BeirDevEvaluator)
    sample = build_dev_evaluator("tiny", "dev", corpus="sample")
    assert dev_metric(sample) == SAMPLE_METRIC
    assert dev_metric(build_dev_evaluator("tiny", "dev")) == SAMPLE_METRIC  # the default
    with pytest.raises(ValueError, match=r"'whole'.*full, sample"):
        build_dev_evaluator("tiny", "dev", corpus="whole")  # type: ignore[arg-type]


def test_dev_score_reads_either_protocol() -> None:
    assert dev_score({FULL_METRIC: 0.5, "step": 3}) == 0.5
    assert dev_score({SAMPLE_METRIC: 0.25}) == 0.25
    assert dev_score({"loss": 1.0}) is None


def test_query_ids_are_checked_before_indexing(dev_beir: Path, tiny_model_dir: Path) -> None:
    retriever = Retriever(load_encoder(tiny_model_dir, device="cpu"))
    with pytest.raises(ValueError, match=r"dev\.tsv: 1 of the query_ids .*'q9'"):
        evaluate(retriever, dev_beir, "dev", query_ids=["q1", "q9"])
    with pytest.raises(ValueError, match="not both"):
        evaluate(retriever, dev_beir, "dev", query_ids=["q1"], skip_queries=1)
    assert len(retriever.index) == 0, "nothing was indexed for a bad request"


def test_sample_protocol_scores_at_the_inference_length(dev_beir: Path, tiny_model_dir: Path) -> None:
    from retrieval.corpus import open_beir
    from trainers.dev import sampled_dev_evaluator

    model = SentenceTransformer(str(tiny_model_dir), device="cpu")
    model.max_seq_length = 8  # the training length
    seen: list[int] = []
    encode_document = model.encode_document

    def spy(*args, **kwargs):
        seen.append(model.max_seq_length)
        return encode_document(*args, **kwargs)

    model.encode_document = spy  # type: ignore[method-assign]
    evaluator = sampled_dev_evaluator(open_beir(dev_beir), "dev", None, max_length=64)
    metrics = evaluator(model)
    assert seen and set(seen) == {64}, "documents must be encoded at the inference length"
    assert model.max_seq_length == 8, "the training length must be restored after scoring"
    assert 0.0 <= metrics[evaluator.primary_metric] <= 1.0
