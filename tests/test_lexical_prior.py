"""The lexical prior: BM25's weights of a document's own tokens added to an inference-free model's
document vectors (``winnow models lexical-prior``)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from scipy import sparse

from retrieval.cli import main
from retrieval.encoders import load_encoder
from retrieval.lexical_prior import LexicalPrior, average_length
from tests.test_train_sparse import setup  # noqa: F401 - the module's fixture: a tiny MLM and corpus


def bm25_tf(tf: float, length: float, avgdl: float, k1: float = 1.2, b: float = 0.75) -> float:
    return tf * (k1 + 1) / (tf + k1 * (1 - b + b * length / avgdl))


def test_forward_adds_bm25_term_weights_of_counted_tokens() -> None:
    prior = LexicalPrior(vocab_size=8, avgdl=4.0, weight=0.5, skip_ids=[0, 1])
    # token 1 is special (not counted), token 0 is padding; the first text has 5 counted tokens
    ids = torch.tensor([[1, 3, 3, 5, 3, 7, 1], [1, 4, 1, 0, 0, 0, 0]])
    mask = torch.tensor([[1, 1, 1, 1, 1, 1, 1], [1, 1, 1, 0, 0, 0, 0]])
    learned = torch.zeros(2, 8)
    learned[0, 2] = 1.0  # an expansion term the text does not hold stays as it is
    out = prior({"input_ids": ids, "attention_mask": mask, "sentence_embedding": learned.clone()})
    got = out["sentence_embedding"]
    want = torch.zeros(2, 8)
    want[0, 2] = 1.0
    want[0, 3] = 0.5 * bm25_tf(3, 5, 4.0)
    want[0, 5] = want[0, 7] = 0.5 * bm25_tf(1, 5, 4.0)
    want[1, 4] = 0.5 * bm25_tf(1, 1, 4.0)
    torch.testing.assert_close(got, want)


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [("weight", 0.0, "weight must be positive"), ("k1", -1.0, "k1 must be positive"),
     ("b", 1.5, r"b must lie in \[0, 1\]"), ("avgdl", 0.0, "avgdl must be positive")],
)  # fmt: skip
def test_out_of_range_parameters_are_refused_by_name(key, value, message) -> None:
    with pytest.raises(ValueError, match=message):
        LexicalPrior(vocab_size=8, **({"avgdl": 4.0} | {key: value}))


def test_average_length_counts_what_the_encoder_reads(setup) -> None:  # noqa: F811
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(setup["mlm"]))
    texts = ["vitamin d and the bones of the elderly " * 4, "a protein", "zzz qqq folds"]
    prior = LexicalPrior(len(tokenizer), avgdl=1.0, skip_ids=tokenizer.all_special_ids)
    for max_length in (6, 512):  # the first cuts the long text, as the encoder would
        features = tokenizer(texts, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
        counted = prior.counted_mask(features).sum(dim=1)  # what the module uses as each length
        assert average_length(texts, tokenizer, max_length) == pytest.approx(float(counted.mean()))
    assert any(i == tokenizer.unk_token_id for i in tokenizer("zzz qqq")["input_ids"])  # [UNK] is not counted


def test_cli_adds_the_prior_and_every_encoder_applies_it(setup, tmp_path, capsys) -> None:  # noqa: F811
    from retrieval.onnx_export import export_onnx

    corpus = setup["root"] / "data" / "beir" / "tiny"
    base = tmp_path / "if"
    assert main(["models", "inference-free", "--base", str(setup["mlm"]), "--idf-corpus", str(corpus),
                 "--output", str(base), "--max-length", "32"]) == 0  # fmt: skip
    with_prior = tmp_path / "prior"
    args = ["models", "lexical-prior", "--model", str(base), "--avgdl-corpus", str(corpus), "--weight", "2"]
    assert main([*args, "--output", str(with_prior)]) == 0
    meta = json.loads((with_prior / "meta.json").read_text())
    avgdl = meta["lexical_prior"]["avgdl"]
    from retrieval.corpus import corpus_texts

    assert avgdl == pytest.approx(average_length(corpus_texts([corpus]), load_encoder(base).tokenizer, 32))
    assert meta["lexical_prior"]["weight"] == 2.0

    texts = ["vitamin d and the bones of the elderly", "a protein that folds"]
    plain, prior = load_encoder(base), load_encoder(with_prior)
    before, after = plain.encode_documents(texts), prior.encode_documents(texts)
    for row, text in enumerate(texts):
        special = set(plain.tokenizer.all_special_ids)  # [UNK] is not a term
        ids = [i for i in plain.tokenizer(text, add_special_tokens=False)["input_ids"] if i not in special]
        terms, counts = np.unique(ids, return_counts=True)
        want = before[row].toarray()[0]
        want[terms] += 2.0 * bm25_tf(counts, len(ids), avgdl)
        np.testing.assert_allclose(after[row].toarray()[0], want, rtol=1e-5, atol=1e-6)
    # queries need no model either way, and keep their IDF weights
    np.testing.assert_array_equal(
        prior.encode_queries(texts).toarray(), plain.encode_queries(texts).toarray()
    )

    onnx = load_encoder(export_onnx(with_prior, tmp_path / "onnx"))  # the prior is traced into the graph
    np.testing.assert_allclose(onnx.encode_documents(texts).toarray(), after.toarray(), atol=1e-3)
    assert onnx.meta["lexical_prior"] == {"weight": 2.0, "k1": 1.2, "b": 0.75, "avgdl": avgdl}
    # the real-text speed collection pools sentences' learned parts: a prior model's own prior, rebuilt
    # from its module or its export's meta.json, takes it out again exactly
    from bench.sparse_corpus import learned_part
    from retrieval.lexical_prior import encoder_prior, prior_vectors

    assert encoder_prior(plain) is None
    for encoder in (prior, onnx):
        module, tokenizer, length = encoder_prior(encoder)
        assert module.settings() == {"weight": 2.0, "k1": 1.2, "b": 0.75, "avgdl": avgdl} and length == 32
        added = prior_vectors(module, tokenizer, texts, length)
        learned = learned_part(sparse.csr_matrix(encoder.encode_documents(texts)), added)
        np.testing.assert_allclose(learned.toarray(), before.toarray(), atol=1e-3)

    # experiments.sparse_transfer re-weights a model's own prior on cached vectors: it rebuilds that
    # prior from the PyTorch module or the ONNX meta, and the encoder's own weight comes back with it
    from experiments.sparse_transfer import lexical_prior_vectors
    from retrieval.corpus import document_text, open_beir

    data = open_beir(corpus)
    documents = [document_text(d) for d in data.corpus()]
    learned = plain.encode_documents(documents).toarray()
    from experiments.sparse_transfer import prior_variants

    for encoder in (prior, onnx):
        added, own = lexical_prior_vectors(encoder, data, [str(corpus)], learned.shape[1])
        assert own == 2.0
        encoded = sparse.csr_matrix(encoder.encode_documents(documents))
        np.testing.assert_allclose(learned + own * added.toarray(), encoded.toarray(), rtol=1e-5, atol=1e-3)
        half = prior_variants(encoded, added, own, [0.5])["+prior0.5"]  # the trained weight 2 replaced by 0.5
        np.testing.assert_allclose(half.toarray(), learned + 0.5 * added.toarray(), atol=1e-3)
    # a model that prunes its documents has lost terms the re-weighted prior would need: refused
    pruned = tmp_path / "prior-pruned"
    assert main(["models", "prune", "--model", str(with_prior), "--doc-max-terms", "3",
                 "--output", str(pruned)]) == 0  # fmt: skip
    with pytest.raises(ValueError, match="prunes its documents"):
        lexical_prior_vectors(load_encoder(pruned), data, [str(corpus)], learned.shape[1])

    # refused before any model loads or anything is written: bad values, unknown corpora, a second prior
    assert main([*args[:-1], "-1", "--output", str(tmp_path / "x")]) == 2
    assert "weight must be positive; got -1.0" in capsys.readouterr().err
    missing = ["models", "lexical-prior", "--model", str(base), "--avgdl-corpus", str(tmp_path / "nowhere")]
    assert main([*missing, "--output", str(tmp_path / "x")]) == 2
    assert "nowhere" in capsys.readouterr().err
    again = ["models", "lexical-prior", "--model", str(with_prior), "--avgdl-corpus", str(corpus)]
    assert main([*again, "--output", str(tmp_path / "x")]) == 2
    assert "already has a lexical prior" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_speed_collection_pools_the_learned_part_and_adds_each_documents_prior(setup, tmp_path) -> None:  # noqa: F811
    from bench.scale import document_sentences, sentences
    from bench.sparse_corpus import collection, max_pool
    from retrieval.lexical_prior import encoder_prior, prior_vectors
    from retrieval.onnx_export import export_onnx
    from retrieval.sparse_encoder import drop_small_contributions, keep_top_terms
    from tests.conftest import write_beir

    corpus = setup["root"] / "data" / "beir" / "tiny"
    base, with_prior = tmp_path / "if", tmp_path / "prior"
    assert main(["models", "inference-free", "--base", str(setup["mlm"]), "--idf-corpus", str(corpus),
                 "--output", str(base), "--max-length", "32"]) == 0  # fmt: skip
    assert main(["models", "lexical-prior", "--model", str(base), "--avgdl-corpus", str(corpus),
                 "--output", str(with_prior)]) == 0  # fmt: skip
    root = tmp_path / "data"
    for name in ("scifact", "nfcorpus"):
        write_beir(root / "beir" / name)
    pool = sentences(root)
    picks = list(document_sentences(len(pool), 6))
    plain = load_encoder(base)
    module, tokenizer, length = encoder_prior(load_encoder(with_prior))
    texts = [" ".join(pool[j] for j in p) for p in picks]
    want = max_pool(sparse.csr_matrix(plain.encode_documents(pool)), picks)
    want = (want + prior_vectors(module, tokenizer, texts, length)).tocsr()
    docs = collection(str(with_prior), 6, tmp_path / "work", root)
    np.testing.assert_allclose(docs.toarray(), want.toarray(), atol=1e-4)
    # pruning applies after the prior, as the model applies it to a whole document; the ONNX export too
    pruned = tmp_path / "pruned"
    prune = ["models", "prune", "--model", str(with_prior), "--doc-max-terms", "4", "--doc-min-contribution"]
    assert main([*prune, "0.5", "--output", str(pruned)]) == 0
    cut = drop_small_contributions(keep_top_terms(want, 4), plain.query_weights, 0.5).toarray()
    assert 0 < np.count_nonzero(cut) < np.count_nonzero(keep_top_terms(want, 4).toarray())
    for model in (pruned, export_onnx(pruned, tmp_path / "onnx")):
        pooled = collection(str(model), 6, tmp_path / "work", root)
        np.testing.assert_allclose(pooled.toarray(), cut, atol=1e-3)


def test_siamese_model_is_refused(setup, tmp_path, capsys) -> None:  # noqa: F811
    corpus = setup["root"] / "data" / "beir" / "tiny"
    splade = tmp_path / "splade"
    from sentence_transformers import SparseEncoder

    SparseEncoder(str(setup["mlm"]), device="cpu").save(str(splade))
    args = ["models", "lexical-prior", "--model", str(splade), "--avgdl-corpus", str(corpus)]
    assert main([*args, "--output", str(tmp_path / "x")]) == 2
    assert "needs an inference-free sparse model" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_training_with_a_prior_saves_it_and_learns_only_the_rest(setup, monkeypatch) -> None:  # noqa: F811
    from retrieval.pooling.loading import load_sparse_encoder
    from tests.test_train_sparse import FULL, recipe

    monkeypatch.setenv("WINNOW_DATA", str(setup["root"] / "data"))
    out = setup["root"] / "model-prior"
    body = FULL.replace("warmup_steps: 2}", "warmup_steps: 2, lexical_prior: 0.5}")
    assert main(["train", str(recipe(setup, body)), "--output", str(out)]) == 0
    model = load_sparse_encoder(str(out), device="cpu")
    route = model[0].sub_modules["document"]
    prior = route[-1]
    assert isinstance(prior, LexicalPrior) and prior.weight == 0.5 and prior.avgdl > 0
    # the saved documents are the trained MLM's weights plus the prior, nothing else
    text = "vitamin d lower risk of bone disease"
    features = model.tokenize([text], task="document")
    with torch.no_grad():
        learned = route[1](route[0](dict(features)))["sentence_embedding"]
        want = prior(dict(features) | {"sentence_embedding": learned.clone()})["sentence_embedding"]
    got = load_encoder(out).encode_documents([text]).toarray()
    np.testing.assert_allclose(got, want.numpy(), rtol=1e-4, atol=1e-5)
    assert (want - learned).gt(0).sum() > 0


def test_training_with_a_prior_averages_its_last_checkpoints(setup, monkeypatch) -> None:  # noqa: F811
    from tests.test_train_sparse import FULL, recipe

    monkeypatch.setenv("WINNOW_DATA", str(setup["root"] / "data"))
    out = setup["root"] / "model-prior-soup"
    body = FULL.replace("warmup_steps: 2}", "warmup_steps: 2, lexical_prior: 0.5}")
    args = [
        "--set",
        "training.max_steps=-1",
        "--set",
        "training.epochs=2",
        "--set",
        "training.average_last=2",
    ]
    assert main(["train", str(recipe(setup, body)), "--output", str(out), *args]) == 0
    assert isinstance(load_encoder(out).model[0].sub_modules["document"][-1], LexicalPrior)


def test_a_non_positive_prior_weight_in_a_recipe_is_refused(setup, monkeypatch, capsys) -> None:  # noqa: F811
    from tests.test_train_sparse import FULL, recipe

    monkeypatch.setenv("WINNOW_DATA", str(setup["root"] / "data"))
    body = FULL.replace("warmup_steps: 2}", "warmup_steps: 2, lexical_prior: 0}")
    assert main(["train", str(recipe(setup, body)), "--output", str(setup["root"] / "bad")]) == 2
    assert "sparse.lexical_prior" in capsys.readouterr().err
    assert not (setup["root"] / "bad").exists()


@pytest.mark.parametrize(
    ("foreign", "trusted"), [("retrieval.lexical_prior.LexicalPrior", True), ("evil.Module", False)]
)
def test_router_routes_are_checked_before_winnow_modules_are_trusted(tmp_path, foreign, trusted) -> None:
    from retrieval.pooling.loading import uses_winnow_modules

    router = "sentence_transformers.base.modules.router.Router"
    (tmp_path / "modules.json").write_text(json.dumps([{"idx": 0, "name": "0", "path": "", "type": router}]))
    types = {
        "query_0": "sentence_transformers.sparse_encoder.modules.SparseStaticEmbedding",
        "document_2": foreign,
    }
    (tmp_path / "router_config.json").write_text(json.dumps({"types": types}))
    assert uses_winnow_modules(str(tmp_path)) is trusted


def test_query_floor_drops_only_the_tokens_below_it() -> None:
    from experiments.sparse_transfer import drop_tokens

    queries = sparse.csr_matrix(np.array([[1.0, 2.0, 0.0, 3.0], [0.5, 0.0, 4.0, 0.0]], np.float32))
    table = np.array([1.0, 2.5, 3.0, 1.9], np.float32)
    kept = drop_tokens(queries, table >= 2.0)
    assert kept.toarray().tolist() == [[0.0, 2.0, 0.0, 0.0], [0.0, 0.0, 4.0, 0.0]]
    assert kept.nnz == 2 and queries.nnz == 5  # the input is left as it was
