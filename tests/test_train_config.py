"""Recipe validation: unknown keys get the closest valid name; bad values name the choices."""

from __future__ import annotations

from pathlib import Path

import pytest

from trainers.config import load_config
from trainers.typed_config import ConfigError

CONFIGS = sorted((Path(__file__).parents[1] / "configs").glob("dense-*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_shipped_recipes_load(path: Path) -> None:
    config = load_config(path)
    assert config.kind == "dense" and config.model_name == "sentence-transformers/all-MiniLM-L6-v2"
    assert config.data.dataset == "scifact" and config.data.split == "train"


def test_shipped_sparse_recipes_load() -> None:
    config = load_config(Path(__file__).parents[1] / "configs" / "sparse-full.yaml")
    assert config.kind == "sparse" and config.model == "rasyosef/splade-tiny"
    assert [config.mining.model, *config.mining.extra_models] == ["bm25", "student"]
    assert config.sparse.trainable_idf and config.sparse.max_length == 512
    general = load_config(Path(__file__).parents[1] / "configs" / "sparse-general.yaml")
    assert general.data.extra_datasets == ["nfcorpus"] and general.sparse.idf_corpora == []
    assert general.sampler.name == "tas_balanced" and general.loss == config.loss


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "r.yaml"
    path.write_text(text)
    return path


def test_unknown_key_suggests_closest(tmp_path) -> None:
    with pytest.raises(
        ConfigError, match=r"r\.yaml: unknown key 'loss\.temprature'; did you mean 'temperature'\?"
    ):
        load_config(write(tmp_path, "loss:\n  temprature: 0.1\n"))
    with pytest.raises(ConfigError, match="unknown key 'trainig'; did you mean 'training'"):
        load_config(write(tmp_path, "trainig: {}\n"))


def test_bad_values_name_the_choices(tmp_path) -> None:
    with pytest.raises(
        ConfigError, match=r"sampler\.name='tas' is not valid; expected one of 'random', 'tas_balanced'"
    ):
        load_config(write(tmp_path, "sampler: {name: tas}\n"))
    with pytest.raises(ConfigError, match=r"training\.batch_size='big' must be of type int"):
        load_config(write(tmp_path, "training: {batch_size: big}\n"))
    with pytest.raises(ConfigError, match=r"r\.yaml:2: invalid YAML"):
        load_config(write(tmp_path, "a: 1\n  b: 2\n"))


CROSS_FIELD_RULES = [
    ("loss: {distill: kl}\n", "loss.distill='kl' needs at least one entry in teachers"),
    ("sampler: {name: tas_balanced}\n", "tas_balanced bins pairs by teacher margin"),
    ("training: {average_last: 0}\n", "training.average_last must be >= 1; got 0"),
    (
        "training: {average_last: 2}\ndata: {dev_split: dev}\n",
        "average_last averages the last checkpoints, data.dev_split picks",
    ),
    ("loss: {teacher_pool: -1}\n", "loss.teacher_pool must be >= 0; got -1"),
    (
        "kind: sparse\ndata: {dev_split: dev, dev_corpus: sample}\n",
        "data.dev_corpus 'sample' scores dense students only",
    ),
    (
        "loss: {teacher_pool: 30}\nmining: {enabled: false}\n",
        "loss.teacher_pool takes the miner's candidates",
    ),
    ("mining: {model: bm25, extra_models: [bm25]}\n", "mining.extra_models repeats a miner"),
    ("loss: {in_batch_weight: -1}\n", "loss.in_batch_weight must be >= 0; got -1"),
    (
        "loss: {in_batch_weight: 1}\nteachers: [{kind: bm25}]\n",
        "loss.in_batch_weight needs a teacher of kind 'dense'",
    ),
    (
        "guide: null\nloss: {name: mnrl, mask_labelled: true}\n",
        "loss.mask_labelled works inside the cached-guide loss",
    ),
    (
        "guide: null\nloss: {name: mnrl}\nmining: {model: bm25, extra_models: [guide]}\n",
        "mining model 'guide' needs a guide",
    ),
    ("kind: sparse\nmodel: {name: m, pooling: {type: mean}}\n", "apply to dense students"),
    ("model: {name: m, pooling_learning_rate: 0.001}\n", "pooling_learning_rate needs a trainable"),
    ("model: {name: m, pooling: {type: cls}, pooling_learning_rate: 0.001}\n", "got 'cls'"),
    ("model: {name: m, pooling: {type: latent_attention, latents: 0}}\n", "pooling.latents must be >= 1"),
    ("model: {name: m, pooling: {type: max}}\n", "model.pooling.type='max' is not valid"),
    ("model: {name: m, poolng: {type: mean}}\n", "did you mean 'pooling'"),
]


@pytest.mark.parametrize(("text", "message"), CROSS_FIELD_RULES)
def test_cross_field_rules(tmp_path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(write(tmp_path, text))


def test_overrides(tmp_path) -> None:
    config = load_config(write(tmp_path, "training: {learning_rate: 2e-5}\n"), {"training.max_steps": 2})
    assert config.training.learning_rate == 2e-5 and config.training.max_steps == 2


def test_auto_margin_scale_is_for_sparse_recipes(tmp_path) -> None:
    path = tmp_path / "x.yaml"
    path.write_text(
        "kind: dense\nloss: {distill: margin_mse, margin_scale: auto}\nteachers: [{kind: bm25}]\n"
    )
    with pytest.raises(ConfigError, match="'auto' is for sparse recipes"):
        load_config(path)
    path.write_text(
        "kind: sparse\nmining: {model: bm25}\n"
        "loss: {distill: margin_mse, margin_scale: auto}\nteachers: [{kind: bm25}]\n"
    )
    assert load_config(path).loss.margin_scale == "auto"


def test_data_root_turns_data_set_names_into_paths(tmp_path) -> None:
    from tests.conftest import write_beir

    root = tmp_path / "root"
    mini, extra = write_beir(root / "beir" / "mini"), write_beir(tmp_path / "extra")
    rows = tmp_path / "rows.jsonl"
    rows.write_text('{"query": "q", "positive": "p"}\n')
    text = f"data: {{dataset: mini, extra_datasets: [{extra}]}}\nsparse: {{idf_corpora: [mini]}}\n"
    config = load_config(write(tmp_path, text), data_root=root)
    assert config.data.dataset == str(mini) and config.data.extra_datasets == [str(extra)]
    assert config.sparse.idf_corpora == [str(mini)]
    assert load_config(write(tmp_path, text)).data.dataset == "mini"  # no root: names stay names
    from_rows = load_config(write(tmp_path, f"data: {{dataset: {rows}}}\n"), data_root=root)
    assert from_rows.data.dataset == str(rows)  # an existing file stays as it is
    missing = write(tmp_path, "data: {dataset: mini}\nsparse: {idf_corpora: [mini, nope]}\n")
    with pytest.raises(
        FileNotFoundError, match=r"r\.yaml: sparse\.idf_corpora\[1\]: data set 'nope' not found"
    ):
        load_config(missing, data_root=root)


def test_train_cli_passes_the_data_root_down_as_paths(tmp_path, monkeypatch, capsys) -> None:
    """``winnow train --data-dir`` resolves the recipe's names once; it leaves the environment alone."""
    import os

    import trainers.dense
    from retrieval.cli import main
    from tests.conftest import write_beir

    mini = write_beir(tmp_path / "root" / "beir" / "mini")
    seen = {}
    monkeypatch.setattr(
        trainers.dense, "train_dense", lambda config, output, resume: seen.update(config=config)
    )
    import trainers.config_checks

    # the recipe's default models are not in the test's empty Hugging Face cache; this test is about data
    monkeypatch.setattr(trainers.config_checks, "check_models", lambda config, where: None)
    monkeypatch.setenv("WINNOW_DATA", str(tmp_path / "elsewhere"))
    recipe = write(tmp_path, "data: {dataset: mini}\n")
    argv = [
        "-q",
        "train",
        str(recipe),
        "--output",
        str(tmp_path / "out"),
        "--data-dir",
        str(tmp_path / "root"),
    ]
    assert main(argv) == 0
    assert seen["config"].data.dataset == str(mini.resolve())
    assert os.environ["WINNOW_DATA"] == str(tmp_path / "elsewhere")
    assert main(argv[:-2]) == 2  # $WINNOW_DATA has no beir/mini
    err = capsys.readouterr().err
    assert "data.dataset: data set 'mini' not found" in err and "(data root from $WINNOW_DATA)" in err


def test_model_as_a_mapping(tmp_path) -> None:
    text = "model:\n  name: base\n  pooling: {type: multi_layer, heads: 4}\n  bidirectional: true\n"
    config = load_config(write(tmp_path, text))
    assert config.model_name == "base" and config.model_spec.bidirectional
    assert config.model_spec.pooling.options() == {"type": "multi_layer", "heads": 4}
    plain = load_config(write(tmp_path, "model: base\n"))
    assert plain.model_name == "base" and not plain.model_spec.customised
