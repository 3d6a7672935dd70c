"""IDF table, FLOPS and IDF-aware FLOPS on hand-checked examples, and the regulariser's bookkeeping."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from trainers.idf import compute_idf, idf_from_df
from trainers.losses.flops import FlopsRegularizer, flops, idf_flops, l1


class WordTokenizer:
    """Whitespace 'tokenizer' over a fixed vocabulary, shaped like a Hugging Face tokenizer call."""

    def __init__(self, vocab: list[str]) -> None:
        self.vocab = {w: i for i, w in enumerate(vocab)}

    def __len__(self) -> int:
        return len(self.vocab)

    def __call__(self, texts, add_special_tokens=False, truncation=False):
        return {"input_ids": [[self.vocab[w] for w in t.split()] for t in texts]}


def test_idf_formula_by_hand() -> None:
    # N = 4 documents; df = 0, 1, 2, 4
    got = idf_from_df(np.array([0, 1, 2, 4]), 4)
    want = [math.log(1 + (4 - df + 0.5) / (df + 0.5)) for df in (0, 1, 2, 4)]
    np.testing.assert_allclose(got, want, rtol=1e-6)
    assert got[3] == pytest.approx(math.log(1 + 0.5 / 4.5))  # a token in every document: small, positive
    with pytest.raises(ValueError, match=r"document frequencies must lie in \[0, 4\]"):
        idf_from_df(np.array([5]), 4)


def test_idf_counts_each_document_once() -> None:
    tokenizer = WordTokenizer(["cat", "dog", "sun", "moon"])
    idf = compute_idf(["cat cat dog", "cat sun", "cat", "dog dog dog"], tokenizer)
    df = np.array([3, 2, 1, 0])
    np.testing.assert_allclose(idf, np.log1p((4 - df + 0.5) / (df + 0.5)), rtol=1e-6)
    assert idf[0] < idf[1] < idf[2] < idf[3]


WEIGHTS = torch.tensor([[1.0, 0.0, 2.0], [3.0, 0.0, 0.0]])  # 2 documents x 3 tokens
IDF = torch.tensor([0.5, 2.0, 4.0])


def test_flops_and_idf_flops_by_hand() -> None:
    # mean over documents: [2, 0, 1] -> FLOPS = 4 + 0 + 1 = 5
    assert float(flops(WEIGHTS)) == pytest.approx(5.0)
    # divided by IDF: [[2, 0, 0.5], [6, 0, 0]] -> means [4, 0, 0.25] -> 16 + 0.0625
    assert float(idf_flops(WEIGHTS, IDF)) == pytest.approx(16.0625)
    # L1: (3 + 3) / 2
    assert float(l1(WEIGHTS)) == pytest.approx(3.0)


def test_idf_flops_penalises_common_tokens_harder() -> None:
    common = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    rare = torch.tensor([[0.0, 1.0], [0.0, 1.0]])
    idf = torch.tensor([0.5, 5.0])
    assert float(flops(common)) == float(flops(rare))
    assert float(idf_flops(common, idf)) > 50 * float(idf_flops(rare, idf))


def test_regularizer_module_reports_sparsity_and_checks_input() -> None:
    reg = FlopsRegularizer("idf_flops", idf=IDF.numpy())
    assert float(reg.compute_loss_from_embeddings(WEIGHTS)) == pytest.approx(16.0625)
    assert reg.last_active == pytest.approx(1.5) and reg.last_flops == pytest.approx(5.0)
    assert float(FlopsRegularizer("flops").compute_loss_from_embeddings(WEIGHTS)) == pytest.approx(5.0)
    with pytest.raises(ValueError, match="needs the IDF table"):
        FlopsRegularizer("idf_flops")
    with pytest.raises(ValueError, match="unknown regulariser 'l2'; expected one of idf_flops, flops, l1"):
        FlopsRegularizer("l2")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="IDF table has 3 tokens; embeddings have 2"):
        reg.compute_loss_from_embeddings(torch.ones(2, 2))
    # gradients flow to the weights
    w = WEIGHTS.clone().requires_grad_(True)
    reg.compute_loss_from_embeddings(w).backward()
    assert w.grad is not None and w.grad.abs().sum() > 0
