"""Shared fixtures: a tiny random BERT sentence-transformer built locally, and tiny BEIR folders."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest

for _var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
    os.environ.setdefault(_var, "1")

WORDS = tuple(
    """
    the a of and to in is on for with by from at as that this are was were be it its not no cat
    cats dog dogs bird fish sun moon star sky sea river tree forest rock sand snow rain wind
    vitamin protein cell cells gene genes cancer heart blood brain bone risk diet sugar fat salt
    study trial effect effects patients mice increase decrease lower higher reduce causes disease
    red blue green black white small large fast slow hot cold new old good bad
    """.split()  # noqa: SIM905
)

DOCS = [
    ("d1", "Cats", "the cat sat on the rock in the sun"),
    ("d2", "Dogs", "dogs run fast in the forest with the wind"),
    ("d3", "Vitamin", "vitamin d lower risk of bone disease in patients"),
    ("d4", "Heart", "salt and fat increase heart disease risk"),
    ("d5", "", "cancer cells with new genes in mice study"),
    ("d6", "Sea", "fish in the blue sea and the river"),
]
QUERIES = {"q1": "cat on a rock", "q2": "heart disease from salt", "q3": "vitamin and bone"}
QRELS = [("q1", "d1", 1), ("q2", "d4", 1), ("q3", "d3", 2), ("q3", "d4", 1)]


def tiny_tokenizer(folder: Path, letters: bool = False):
    """A BertTokenizer over the tests' words, plus single letters if ``letters``; vocab.txt in ``folder``."""
    from transformers import BertTokenizer

    special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    vocab = list(dict.fromkeys([*special, *WORDS, *("abcdefghijklmnopqrstuvwxyz" if letters else "")]))
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n")
    tokenizer = BertTokenizer(str(folder / "vocab.txt"))
    assert tokenizer.vocab_size == len(vocab), "tokenizer lost its vocabulary"
    return tokenizer


def tiny_bert_config(vocab_size: int, **overrides: object):
    """The tiny BERT shape the tests share: 2 layers, hidden 32, 2 heads; ``overrides`` change any field."""
    from transformers import BertConfig

    shape: dict[str, object] = {
        "hidden_size": 32,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "intermediate_size": 64,
        "max_position_embeddings": 128,
    }
    return BertConfig(vocab_size=vocab_size, **{**shape, **overrides})


def build_tiny_model(path: Path, seed: int = 0) -> Path:
    """A 2-layer, hidden-32 BERT with a 100-word vocabulary and mean pooling, saved as a ST model."""
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.models import Pooling, Transformer
    from transformers import BertModel

    torch.manual_seed(seed)
    hf_dir = path / "hf"
    hf_dir.mkdir(parents=True)
    tokenizer = tiny_tokenizer(hf_dir, letters=True)
    BertModel(tiny_bert_config(tokenizer.vocab_size)).save_pretrained(hf_dir)
    tokenizer.save_pretrained(hf_dir)
    transformer = Transformer(str(hf_dir), max_seq_length=64)
    model = SentenceTransformer(modules=[transformer, Pooling(transformer.get_embedding_dimension(), "mean")])
    out = path / "st"
    model.save(str(out))
    return out


def stop_after_first_checkpoint(monkeypatch: pytest.MonkeyPatch) -> Callable[..., object]:
    """Make ``SentenceTransformerTrainer.train`` stop after one step (its checkpoint written) with a
    KeyboardInterrupt, as a crash would; returns the real ``train`` for restoring."""
    from sentence_transformers import SentenceTransformerTrainer

    real_train = SentenceTransformerTrainer.train

    def interrupted(self, *args, **kwargs):
        self.args.max_steps = 1
        real_train(self, *args, **kwargs)
        raise KeyboardInterrupt

    monkeypatch.setattr(SentenceTransformerTrainer, "train", interrupted)
    return real_train


@pytest.fixture(autouse=True)
def _process_settings_restored():
    """``winnow -q`` run in-process switches progress bars, library logging and warnings off for the
    whole process (as a CLI run wants); each test starts from and leaves the default settings."""
    import logging
    import warnings

    from retrieval import settings

    state, env = dict(settings._state), dict(os.environ)
    levels = {name: logging.getLogger(name).level for name in logging.root.manager.loggerDict}
    root_level = logging.getLogger().level
    with warnings.catch_warnings():
        yield
    settings._state.update(state)
    os.environ.clear()
    os.environ.update(env)
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)
    for name in set(logging.root.manager.loggerDict) - set(levels):
        logging.getLogger(name).setLevel(logging.NOTSET)
    logging.getLogger().setLevel(root_level)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny-model"))


@pytest.fixture(scope="session")
def tiny_encoder(tiny_model_dir: Path):
    from retrieval.encoders import load_encoder

    return load_encoder(tiny_model_dir, device="cpu")


def write_beir(root: Path, docs=DOCS, queries=QUERIES, qrels=QRELS, split: str = "test") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    with (root / "corpus.jsonl").open("w") as f:
        for doc_id, title, text in docs:
            f.write(json.dumps({"_id": doc_id, "title": title, "text": text}) + "\n")
    with (root / "queries.jsonl").open("w") as f:
        for qid, text in queries.items():
            f.write(json.dumps({"_id": qid, "text": text}) + "\n")
    (root / "qrels").mkdir(exist_ok=True)
    with (root / "qrels" / f"{split}.tsv").open("w") as f:
        f.write("query-id\tcorpus-id\tscore\n")
        for qid, doc_id, score in qrels:
            f.write(f"{qid}\t{doc_id}\t{score}\n")
    return root


@pytest.fixture
def tiny_beir(tmp_path: Path) -> Path:
    return write_beir(tmp_path / "tiny")
