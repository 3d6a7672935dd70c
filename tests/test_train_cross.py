"""Cross-encoder training (``kind: cross``): each objective end to end on a tiny model, the result
reranks and teaches, and recipe errors are caught before any work."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from retrieval import Retriever
from retrieval.cli import main
from retrieval.onnx_export import is_cross_encoder
from retrieval.rerank import Reranker
from tests.conftest import DOCS, QRELS, QUERIES, build_tiny_model, write_beir
from trainers.config import load_config
from trainers.cross import cross_rows
from trainers.rows import TextTable, TrainingRows
from trainers.typed_config import ConfigError

TEXTS = {d: f"{title} {text}" for d, title, text in DOCS}


@pytest.fixture(scope="module")
def setup(tmp_path_factory, tiny_model_dir) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("train-cross")
    write_beir(root / "data" / "beir" / "tiny", split="train")
    write_beir(root / "data" / "beir" / "tiny", split="dev")
    guide = build_tiny_model(root / "guide", seed=1)
    return {"root": root, "student": tiny_model_dir, "guide": guide}


TWO_STEPS = "batch_size: 2, max_steps: 2, logging_steps: 1, eval_steps: 1"


def recipe(setup: dict[str, Path], name: str, body: str, dev: str = "dev", training: str = TWO_STEPS) -> Path:
    path = setup["root"] / f"{name}.yaml"
    path.write_text(
        f"kind: cross\nmodel: {setup['student']}\ncache_dir: {setup['root'] / 'cache'}\n"
        f"data: {{dataset: tiny, split: train, dev_split: {dev}}}\n"
        f"guide: {{model: {setup['guide']}}}\n"
        "mining: {model: bm25, num_negatives: 2, range_max: 4}\n"
        f"training: {{{training}}}\n" + body
    )
    return path


def train(setup: dict[str, Path], config: Path, out: Path) -> None:
    argv = ["-q", "train", str(config), "--output", str(out), "--data-dir", str(setup["root"] / "data")]
    assert main(argv) == 0


@pytest.mark.parametrize(
    ("name", "body"),
    [
        ("bce", "loss: {name: bce}\n"),
        ("mnrl", "loss: {name: mnrl}\n"),
        (
            "margin-mse",
            "loss: {distill: margin_mse, contrastive_weight: 0}\nteachers: [{kind: bm25, weight: 1.0}]\n",
        ),
    ],
)
def test_two_step_training_writes_a_cross_encoder(setup, name: str, body: str) -> None:
    from sentence_transformers import CrossEncoder

    out = setup["root"] / f"cross-{name}"
    train(setup, recipe(setup, name, body), out)
    meta = json.loads((out / "meta.json").read_text())
    assert meta["kind"] == "model" and meta["model_type"] == "cross" and meta["steps"] == 2
    assert meta["best_dev_ndcg_at_10"] is not None, "the dev reranking score picks the checkpoint"
    log = [json.loads(line) for line in (out / "training_log.jsonl").read_text().splitlines()]
    assert any("eval_dev_rerank_ndcg@10" in entry for entry in log)
    scores = CrossEncoder(str(out), device="cpu").predict([("cat on a rock", TEXTS["d1"])])
    assert scores.shape == (1,)
    assert is_cross_encoder(out), "`winnow export onnx` must see a cross-encoder"
    assert not Path(f"{out}.checkpoints").exists()


def test_training_fits_the_pairs(setup) -> None:
    """Eighty steps at a high rate more than halve the pairwise loss, and the positives of the
    training queries score above the mean of the other documents."""
    from sentence_transformers import CrossEncoder

    out = setup["root"] / "cross-learns"
    training = "batch_size: 6, max_steps: 80, learning_rate: 2.0e-3, warmup_ratio: 0, logging_steps: 10"
    train(setup, recipe(setup, "learns", "loss: {name: bce}\n", dev="null", training=training), out)
    log = [json.loads(line) for line in (out / "training_log.jsonl").read_text().splitlines()]
    losses = [entry["loss"] for entry in log if "loss" in entry]
    assert losses[-1] < 0.5 * losses[0]
    model = CrossEncoder(str(out), device="cpu")
    for qid, query in QUERIES.items():
        positives = {d for q, d, r in QRELS if q == qid and r > 0}
        scores = dict(zip(TEXTS, model.predict([(query, t) for t in TEXTS.values()]), strict=True))
        others = [s for d, s in scores.items() if d not in positives]
        assert min(scores[d] for d in positives) > sum(others) / len(others)


def test_the_trained_model_reranks_and_teaches(setup, tiny_encoder) -> None:
    out = setup["root"] / "cross-bce"
    if not out.is_dir():
        train(setup, recipe(setup, "bce", "loss: {name: bce}\n"), out)
    documents = [{"_id": d, "title": t, "text": x} for d, t, x in DOCS]
    first = Retriever(tiny_encoder).build(documents)
    hits = Reranker(first, str(out), depth=4, documents=documents).search(list(QUERIES.values()), k=4)
    assert all(len(ids) == 4 for ids in hits.ids)
    dense = setup["root"] / "taught.yaml"
    dense.write_text(
        f"model: {setup['student']}\ncache_dir: {setup['root'] / 'cache'}\n"
        "data: {dataset: tiny, split: train}\nguide: null\n"
        "mining: {model: bm25, num_negatives: 1, range_max: 4}\n"
        "loss: {name: mnrl, distill: margin_mse, contrastive_weight: 0}\n"
        f"teachers: [{{kind: cross, model: {out}, weight: 1.0}}]\n"
        "training: {batch_size: 2, max_steps: 1}\n"
    )
    train(setup, dense, setup["root"] / "taught")
    meta = json.loads((setup["root"] / "taught" / "meta.json").read_text())
    assert meta["model_type"] == "dense" and meta["config"]["teachers"][0]["kind"] == "cross"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("loss: {name: bce}\nmining: {model: student}\n", "mining model 'student'.*cannot search"),
        ("loss: {name: bce}\nmining: {model: bm25, extra_models: [student]}\n", "mining model 'student'"),
        ("loss: {name: gist}\n", "loss.name 'gist': cross-encoders train with 'bce' or 'mnrl'"),
        ("loss: {name: bce, distill: kl}\nteachers: [{kind: bm25}]\n", "distil with 'margin_mse'"),
        (
            "loss: {distill: margin_mse}\nteachers: [{kind: bm25}]\n",
            "one objective.*contrastive_weight to 0",
        ),
        ("loss: {name: bce}\nmining: {model: bm25, enabled: false}\n", "mining.enabled: true"),
        (
            "loss: {name: bce}\nmining: {model: bm25}\ndata: {dev_split: dev, dev_corpus: full}\n",
            "data.dev_corpus 'full'",
        ),
    ],
)
def test_bad_cross_recipes_are_refused_naming_the_key(tmp_path: Path, body: str, message: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("kind: cross\nguide: null\n" + body)
    with pytest.raises(ConfigError, match=rf"bad\.yaml: .*{message}"):
        load_config(path)


def test_bce_is_for_cross_encoders_only(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("kind: dense\nloss: {name: bce}\n")
    with pytest.raises(ConfigError, match="loss.name 'bce' trains cross-encoders"):
        load_config(path)


def test_shipped_rerank_recipe_loads() -> None:
    config = load_config(Path(__file__).parents[1] / "configs" / "rerank.yaml")
    assert config.kind == "cross" and config.loss.name == "bce" and config.mining.guide_filter
    assert config.mining.model == "bm25" and config.guide is not None


def rows() -> TrainingRows:
    columns = {
        "anchor": ["q", "q", "r"],
        "positive": ["p", "p", "s"],
        "negative": ["n1", "n2", "n1"],
        "label": [[0, 1, 2, 0.9, 0.1], [0, 1, 3, 0.9, 0.4], [4, 5, 2, 1.0, 0.0]],
    }
    return TrainingRows(columns, [0, 0, 1], [0.8, 0.5, 1.0], ["q0", "q1"], TextTable())


def test_bce_rows_are_distinct_pairs_with_binary_labels(tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    path.write_text("kind: cross\nguide: null\nloss: {name: bce}\nmining: {model: bm25}\n")
    out = cross_rows(load_config(path), rows())
    pairs = list(zip(out.columns["query"], out.columns["document"], out.columns["label"], strict=True))
    assert pairs == [("q", "p", 1.0), ("q", "n1", 0.0), ("q", "n2", 0.0), ("r", "s", 1.0), ("r", "n1", 0.0)]
    assert out.row_query == [0, 0, 0, 1, 1] and out.row_margin == [0.8, 0.8, 0.5, 1.0, 1.0]


def test_margin_rows_carry_the_scaled_teacher_margin(tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    path.write_text(
        "kind: cross\nguide: null\nmining: {model: bm25}\nteachers: [{kind: bm25}]\n"
        "loss: {distill: margin_mse, contrastive_weight: 0, margin_scale: 10}\n"
    )
    out = cross_rows(load_config(path), rows())
    assert set(out.columns) == {"anchor", "positive", "negative", "label"}
    assert out.columns["label"] == pytest.approx([8.0, 5.0, 10.0])
