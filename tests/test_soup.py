from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from retrieval.cli import main
from tests.conftest import build_tiny_model
from trainers.soup import average_models, mixing_shares


def test_average_refuses_other_architectures() -> None:
    import torch

    from trainers.soup import average_models

    with pytest.raises(ValueError, match=r"'weight' has shape \(4, 2\) in model 2 and \(3, 2\) in model 1"):
        average_models([torch.nn.Linear(2, 3), torch.nn.Linear(2, 4)])
    with pytest.raises(ValueError, match="other parameters than model 1"):
        average_models([torch.nn.Linear(2, 3), torch.nn.Linear(2, 3, bias=False)])
    a, b = torch.nn.Linear(2, 3), torch.nn.Linear(2, 3)
    want = (a.weight.detach() + b.weight.detach()) / 2
    torch.testing.assert_close(average_models([a, b]).weight.detach(), want)


def test_weights_mix_the_models_in_proportion_and_are_scaled_to_sum_to_one() -> None:
    a, b = torch.nn.Linear(2, 3), torch.nn.Linear(2, 3)
    want = 0.25 * a.weight.detach() + 0.75 * b.weight.detach()
    torch.testing.assert_close(average_models([a, b], [1.0, 3.0]).weight.detach(), want)
    assert mixing_shares(2, None) == [0.5, 0.5]
    assert mixing_shares(3, [2, 0, 2]) == [0.5, 0.0, 0.5]
    for bad, message in (
        ([1.0], "1 weights for 2 models"),
        ([1.0, -1.0], "non-negative"),
        ([0, 0], "not all zero"),
    ):
        with pytest.raises(ValueError, match=message):
            mixing_shares(2, bad)


def test_models_average_with_weights_interpolates_from_the_start_point(tmp_path: Path, capsys) -> None:
    from sentence_transformers import SentenceTransformer

    base, tuned = build_tiny_model(tmp_path / "base", seed=0), build_tiny_model(tmp_path / "tuned", seed=1)
    out = tmp_path / "wise"
    args = ["models", "average", "--model", str(base), "--model", str(tuned)]
    assert main([*args, "--weight", "0.5", "--output", str(out)]) == 2  # one weight for two models
    assert "1 weights for 2 models" in capsys.readouterr().err and not out.exists()
    assert main([*args, "--weight", "0.7", "--weight", "0.3", "--output", str(out)]) == 0
    states = [SentenceTransformer(str(p), device="cpu").state_dict() for p in (base, tuned, out)]
    floats = [name for name, t in states[0].items() if t.is_floating_point()]
    assert floats
    for name in floats:
        torch.testing.assert_close(states[2][name], 0.7 * states[0][name] + 0.3 * states[1][name])
    meta = json.loads((out / "meta.json").read_text())
    assert meta["averaged_from"] == [str(base), str(tuned)]
    assert meta["average_weights"] == pytest.approx([0.7, 0.3])
