"""Hybrid retrieval: members searched once and fused, save/load, corpora checks, the CLI, and tuning."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from retrieval import Retriever, load_retriever
from retrieval.base import HYBRID_KIND
from retrieval.cli import main
from retrieval.fusion import fuse
from retrieval.hybrid import Hybrid
from retrieval.hybrid_config import HybridConfig, MemberSpec
from tests.conftest import DOCS, QUERIES, build_tiny_model, write_beir

DOCUMENTS = [{"_id": d, "title": t, "text": x} for d, t, x in DOCS]


@pytest.fixture(scope="module")
def second_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny-second"), seed=1)


def members(tiny_encoder, second_model: Path) -> list[Retriever]:
    from retrieval.encoders import load_encoder

    return [Retriever(tiny_encoder), Retriever(load_encoder(second_model, device="cpu"))]


def test_hybrid_fuses_each_member_searched_once(tiny_encoder, second_model, monkeypatch) -> None:
    hybrid = Hybrid(members(tiny_encoder, second_model), fusion="convex", weights=[0.3, 0.7], depth=4)
    hybrid.build(DOCUMENTS)
    calls = []
    for member in hybrid.members:
        original = member.search
        monkeypatch.setattr(
            member, "search", lambda q, k, batch_size=64, f=original: calls.append(k) or f(q, k)
        )
    queries = list(QUERIES.values())
    fused = hybrid.search(queries, k=3)
    assert calls == [4, 4]  # one search per member for the whole batch, at the member depth
    by_hand = fuse(
        [m.index.search(m.encoder.encode_queries(queries), 4) for m in hybrid.members],
        sorted(d["_id"] for d in DOCUMENTS),
        method="convex",
        weights=[0.3, 0.7],
        k=3,
    )
    assert fused.ids == by_hand.ids
    assert fused.scores.ravel().tolist() == pytest.approx(by_hand.scores.ravel().tolist())
    assert hybrid.name.startswith("hybrid-convex(dense:") and hybrid.index_spec.startswith(
        "hybrid:convex(minmax)["
    )


def test_save_and_load_round_trip(tiny_encoder, second_model, tmp_path) -> None:
    hybrid = Hybrid(members(tiny_encoder, second_model), fusion="rrf", rrf_k=10, depth=[5, 3])
    hybrid.build(DOCUMENTS)
    hybrid.save(tmp_path / "hybrid")
    meta = json.loads((tmp_path / "hybrid" / "meta.json").read_text())
    assert meta["kind"] == HYBRID_KIND and meta["members"] == ["0-dense", "1-dense"]
    loaded = load_retriever(tmp_path / "hybrid")
    assert isinstance(loaded, Hybrid)
    assert loaded.describe() == hybrid.describe()
    queries = list(QUERIES.values())
    assert loaded.search(queries, k=4).ids == hybrid.search(queries, k=4).ids


def test_members_with_different_corpora_are_refused(tiny_encoder, second_model) -> None:
    first, second = members(tiny_encoder, second_model)
    first.build(DOCUMENTS)
    second.build(DOCUMENTS[:-1])
    with pytest.raises(ValueError) as info:
        Hybrid([first, second])
    message = str(info.value)
    assert "member 0 (dense" in message and "has 6" in message and "has 5" in message
    assert "1 only in member 0 (first: 'd6')" in message


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"fusion": "max"}, "expected one of rrf, convex"),
        ({"normalize": "softmax"}, "expected one of minmax, zscore, none"),
        ({"weights": [1.0, 2.0, 3.0]}, "got 3 weight(s) for 2 members"),
        ({"weights": [float("nan"), 1.0]}, "nan not a finite number >= 0"),
        ({"depth": [10]}, "got 1 depths for 2 members"),
        ({"depth": 0}, "0 is not an integer >= 1"),
    ],
)
def test_bad_hybrid_settings(tiny_encoder, second_model, kwargs, message) -> None:
    with pytest.raises(ValueError) as info:
        Hybrid(members(tiny_encoder, second_model), **kwargs)
    assert message in str(info.value)


def test_member_specs() -> None:
    assert MemberSpec.parse("bm25") == MemberSpec(kind="bm25")
    spec = MemberSpec.parse("dense=org/model@faiss:HNSW32")
    assert (spec.kind, spec.model, spec.index) == ("dense", "org/model", "faiss:HNSW32")
    assert str(spec) == "dense=org/model@faiss:HNSW32"
    for bad, message in [
        ("colbert=x", "KIND one of dense, sparse"),
        ("dense=", "no model after 'dense='"),
        ("dense=x@", "nothing after '@'"),
        ("dense=x@annoy", "annoy"),
    ]:
        with pytest.raises(ValueError, match=message):
            MemberSpec.parse(bad)


def test_config_file_round_trip_and_bad_keys(tmp_path, tiny_model_dir) -> None:
    config = HybridConfig.from_args([f"dense={tiny_model_dir}", "bm25"], fusion="convex", weights=[0.4, 0.6])
    path = config.write(tmp_path / "hybrid.yaml")
    again = HybridConfig.read(path)
    assert again.to_dict() == config.to_dict()
    (tmp_path / "bad.yaml").write_text("members: [bm25]\nfusoin: rrf\n")
    with pytest.raises(ValueError, match=r"bad.yaml: unknown key 'fusoin'"):
        HybridConfig.read(tmp_path / "bad.yaml")
    (tmp_path / "weights.yaml").write_text("members: [bm25, bm25]\nweights: [1]\n")
    with pytest.raises(ValueError, match=r"weights.yaml: got 1 weight\(s\) for 2 members"):
        HybridConfig.read(tmp_path / "weights.yaml")


def test_cli_index_search_and_eval_a_hybrid(
    tiny_beir, tiny_model_dir, second_model, tmp_path, capsys
) -> None:
    flags = ["--member", f"dense={tiny_model_dir}", "--member", f"dense={second_model}", "--fusion", "convex"]
    flags += ["--weights", "0.25,0.75", "--depth", "5"]
    out = tmp_path / "hybrid"
    assert main(["-q", "index", *flags, "--corpus", str(tiny_beir), "--output", str(out)]) == 0
    assert "indexed 6 documents with hybrid-convex(dense:" in capsys.readouterr().out
    assert (
        main(["-q", "search", "--index-dir", str(out), "--query", "cat on a rock", "--format", "jsonl"]) == 0
    )
    searched = json.loads(capsys.readouterr().out)
    fly = tmp_path / "fly.json"
    saved = tmp_path / "saved.json"
    assert main(["-q", "eval", "beir", *flags, "--data", str(tiny_beir), "--output", str(fly)]) == 0
    assert (
        main(
            ["-q", "eval", "beir", "--index-dir", str(out), "--data", str(tiny_beir), "--output", str(saved)]
        )
        == 0
    )
    on_the_fly, from_folder = json.loads(fly.read_text()), json.loads(saved.read_text())
    assert on_the_fly["metrics"] == from_folder["metrics"]
    assert on_the_fly["system"]["fusion"] == "convex" and on_the_fly["system"]["weights"] == [0.25, 0.75]
    assert [m["kind"] for m in on_the_fly["system"]["members"]] == ["dense", "dense"]
    hybrid = load_retriever(out)
    assert searched["ids"] == hybrid.search(["cat on a rock"], k=10).ids[0]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--weights", "1,2,3"], "got 3 weight(s) for 2 members"),
        (["--weights", "1,x"], "--weights '1,x': 'x' is not a number"),
        (["--weights=-1,1"], "-1.0 not a finite number >= 0"),
        (["--depth", "0"], "depth 0: expected an integer >= 1"),
    ],
)
def test_cli_refuses_bad_fusion_settings(tiny_beir, tiny_model_dir, extra, message, capsys) -> None:
    argv = [
        "eval",
        "beir",
        "--data",
        str(tiny_beir),
        "--member",
        f"dense={tiny_model_dir}",
        "--member",
        "bm25",
    ]
    assert main([*argv, *extra]) == 2
    assert message in capsys.readouterr().err


def test_cli_unknown_fusion_lists_the_valid_ones(tiny_beir, capsys) -> None:
    with pytest.raises(SystemExit):
        main(["eval", "beir", "--data", str(tiny_beir), "--member", "bm25", "--fusion", "max"])
    assert "invalid choice: 'max' (choose from 'rrf', 'convex')" in capsys.readouterr().err


def test_fusion_flags_without_a_hybrid_are_refused(tiny_beir, tiny_model_dir, capsys) -> None:
    argv = ["eval", "beir", "--data", str(tiny_beir), "--model", str(tiny_model_dir), "--weights", "1,1"]
    assert main(argv) == 2
    assert "--weights set a hybrid's fusion; add --member" in capsys.readouterr().err


def test_tune_refuses_the_test_split(tiny_beir, tmp_path, capsys) -> None:
    argv = ["tune", "fusion", "--data", str(tiny_beir), "--split", "test", "--member", "bm25"]
    assert main([*argv, "--member", "bm25", "--output", str(tmp_path / "h.yaml")]) == 2
    assert "tuning on the test split is refused" in capsys.readouterr().err
    assert not (tmp_path / "h.yaml").exists()


def test_tune_writes_the_best_config(tmp_path, tiny_model_dir, second_model, capsys) -> None:
    data = write_beir(tmp_path / "tiny-dev", split="dev")
    out = tmp_path / "tuned.yaml"
    members = ["--member", f"dense={tiny_model_dir}", "--member", f"dense={second_model}"]
    argv = ["-q", "tune", "fusion", "--data", str(data), "--split", "dev", *members, "--depths", "3,6"]
    assert main([*argv, "--weight-step", "0.25", "--output", str(out)]) == 0
    config = HybridConfig.read(out)
    tuning = config.tuning
    assert tuning["split"] == "dev" and tuning["n_queries"] == 3
    # 2 depths x (1 rrf constant + 2 normalisations) x 3 weight pairs
    assert tuning["n_settings"] == 18
    best = tuning["top"][0]
    assert best["ndcg@10"] == tuning["score"] >= max(row["ndcg@10"] for row in tuning["top"])
    assert config.fusion == best["fusion"] and config.weights == best["weights"]
    assert config.depth == best["depth"]
    assert len(tuning["members_alone"]) == 2
    result = tmp_path / "result.json"
    argv = ["-q", "eval", "beir", "--data", str(data), "--split", "dev", "--hybrid", str(out)]
    assert main([*argv, "--output", str(result)]) == 0
    assert json.loads(result.read_text())["metrics"]["ndcg@10"] == pytest.approx(tuning["score"])
