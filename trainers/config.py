"""Training configuration: typed dataclasses read from YAML, with validation that names bad keys.

A config file has one top-level section per concern (``data``, ``mining``, ``guide``, ``loss``,
``sampler``, ``teachers``, ``training``); every field has a default, so a recipe states only what it
changes. Unknown keys are rejected with the closest valid name (``trainers.typed_config``)::

    ConfigError: configs/x.yaml: unknown key 'loss.temprature'; did you mean 'temperature'?

Every numeric field has its valid range in one table, ``trainers.config_checks.RANGES`` (floats must
also be finite)::

    ConfigError: configs/x.yaml: loss.temperature must be > 0; got 0.0
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from trainers.model_config import ModelConfig
from trainers.sparse_config import SparseConfig
from trainers.typed_config import from_dict, read_yaml


def default_cache_dir() -> str:
    """``$WINNOW_CACHE``, else ``~/.cache/winnow``: frozen-model outputs, keyed by content."""
    return os.environ.get("WINNOW_CACHE") or os.path.expanduser("~/.cache/winnow")


@dataclass
class DataConfig:
    """Where the training pairs come from.

    Attributes:
        dataset: a BEIR folder, a data set name (a folder ``beir/<name>`` of the data root, see
            :func:`retrieval.settings.data_root`), a JSONL file of
            ``{"query", "positive"[, "negatives"]}`` rows, or a Hugging Face dataset saved with
            ``save_to_disk``.
        split: qrels split used for training (BEIR input).
        dev_split: qrels split scored during training for model selection (``None``: no dev scoring).
        extra_datasets: more BEIR data sets whose ``split`` pairs are added to the training set.
        max_queries: keep at most this many training queries (``None``: all).
        max_positives: positives kept per query, highest relevance first.
        dev_max_queries: dev queries scored during training (sorted by id; ``None``: all).
        dev_corpus: how dev is scored (``trainers.dev``): ``full`` indexes the whole corpus and scores
            graded nDCG@10 as ``winnow eval beir`` does; ``sample`` (dense students only) uses a BM25
            sample of the corpus and binary relevance, cheaper on a large corpus; ``None``: ``sample``
            for a dense student, ``full`` for a sparse one.
        title_queries: unlabelled documents of ``dataset``'s corpus whose title becomes an extra
            training query with the rest of the document as its positive (``trainers.title_queries``;
            0: none).
    """

    dataset: str = "scifact"
    split: str = "train"
    dev_split: str | None = None
    extra_datasets: list[str] = field(default_factory=list)
    max_queries: int | None = None
    max_positives: int = 4
    dev_max_queries: int | None = 300
    dev_corpus: Literal["full", "sample"] | None = None
    title_queries: int = 0


@dataclass
class MiningConfig:
    """Hard-negative mining, like sentence-transformers' ``mine_hard_negatives``.

    Attributes:
        enabled: mine negatives at all (without them rows are (query, positive) pairs).
        model: ``student`` (the untrained student: FAISS for a dense one, the embedded inverted index
            for a sparse one), ``guide``, ``bm25`` or a dense model id/path.
        extra_models: more miners (same choices); each mines with the same settings and the
            queries' negatives are taken from all miners in turn (``model`` first), so
            ``num_negatives: 4`` with one extra miner keeps two of each where both have them.
        range_min: skip candidates ranked above this (0-based) to avoid near duplicates.
        range_max: consider only the top ``range_max`` candidates.
        num_negatives: negatives kept per query.
        absolute_margin: drop candidates whose miner score is above ``positive - absolute_margin``.
        relative_margin: drop candidates whose miner score is above ``positive * (1 - relative_margin)``.
        guide_filter: drop candidates that the guide model judges as false negatives (GIST rule).
        positive_reference: which of a query's positives the margins and the guide filter compare a
            candidate with when it has several: ``least`` (the least similar one: drop anything
            that beats any known match; the strictest) or ``most`` (the most similar one: drop only
            what beats every known match). The ``gist`` and ``st_gist`` losses still mask, per row, a
            mined negative the guide ranks above that row's positive.
    """

    enabled: bool = True
    model: str = "student"
    extra_models: list[str] = field(default_factory=list)
    range_min: int = 0
    range_max: int = 30
    num_negatives: int = 4
    absolute_margin: float | None = None
    relative_margin: float | None = None
    guide_filter: bool = True
    positive_reference: Literal["least", "most"] = "least"


@dataclass
class GuideConfig:
    """The frozen guide model of GISTEmbed.

    Attributes:
        model: hub id or path of the guide.
        margin_strategy: ``absolute`` (mask if guide(q, c) > guide(q, p) - margin) or ``relative``
            (mask if guide(q, c) > guide(q, p) - |guide(q, p)| * margin).
        margin: the margin of that rule; negative values are more lenient (``-0.05``: mask only
            candidates the guide scores 0.05 above the positive).
        max_length: tokens the guide reads per text (``None``: the model's own limit).
    """

    model: str = "sentence-transformers/all-mpnet-base-v2"
    margin_strategy: Literal["absolute", "relative"] = "absolute"
    margin: float = 0.0
    max_length: int | None = 256


@dataclass
class LossConfig:
    """The training objective.

    Attributes:
        name: ``mnrl`` (sentence-transformers' MultipleNegativesRankingLoss), ``gist`` (cached-guide
            GIST), ``st_gist`` (sentence-transformers' GISTEmbedLoss, guide run every step); for
            ``kind: cross`` ``bce`` (pointwise) or ``mnrl`` (``trainers.cross``).
        temperature: softmax temperature of the contrastive term (``mnrl`` uses scale = 1/temperature).
        contrast_anchors: add anchor-anchor terms (GIST paper).
        contrast_positives: add positive-positive terms (GIST paper).
        distill: ``None``, ``margin_mse`` (pairwise, TAS-B) or ``kl`` (listwise) from the teacher ensemble.
        distill_weight: weight of the distillation term.
        contrastive_weight: weight of the in-batch contrastive term (0 for pure distillation).
        distill_temperature: softmax temperature of the student scores in the KL term.
        teacher_temperature: softmax temperature of the normalised teacher scores in the KL term.
        margin_scale: multiplies student score margins before Margin-MSE, or ``auto``: the ratio of the
            spread of teacher margins to the spread of the untrained student's margins on a sample of
            training rows (sparse dot products are ~50x larger than cosines). (Normalised teacher margins lie
            in [-1, 1]; cosine margins are small).
        teacher_margin_floor: Margin-MSE only: raise teacher margins (positive minus negative) below
            this value to it, so a teacher that prefers a mined negative to the labelled positive
            teaches at most a tie (0) instead of the reverse order. ``None``: margins as they are.
        teacher_pool: each teacher's scores are min-max normalised per query over the query's
            positives and negatives plus this many more of the miner's top candidates (0: over the
            positives and negatives alone, where the weakest negative always scores 0 and, with one
            positive, the positive 1, whatever the teacher thought of them).
        in_batch_weight: weight of TAS-B's in-batch Margin-MSE term (dense recipes): the first dense
            teacher's margins between each query's positive and the other rows' documents of the
            batch (``trainers.losses.InBatchMarginMSELoss``); 0 leaves it out.
        in_batch_normalise: min-max normalise the in-batch teacher's scores per query (as the
            ensemble does); ``false`` fits the teacher's raw cosine margins (TAS-B's way).
        mask_labelled: cached-guide losses (``gist``; the sparse trainer's ``mnrl`` too) also mask an
            in-batch candidate that the training labels name as relevant to the anchor (another
            row's positive, or a relevant document past ``data.max_positives``).
    """

    name: Literal["mnrl", "gist", "st_gist", "bce"] = "gist"
    temperature: float = 0.05
    contrast_anchors: bool = False
    contrast_positives: bool = False
    distill: Literal["margin_mse", "kl"] | None = None
    distill_weight: float = 1.0
    contrastive_weight: float = 1.0
    distill_temperature: float = 0.05
    teacher_temperature: float = 0.1
    margin_scale: float | Literal["auto"] = 5.0
    teacher_margin_floor: float | None = None
    teacher_pool: int = 0
    in_batch_weight: float = 0.0
    in_batch_normalise: bool = True
    mask_labelled: bool = False


@dataclass
class SamplerConfig:
    """Batch composition.

    Attributes:
        name: ``random`` (each query once per epoch, random pair) or ``tas_balanced``.
        clusters: number of query clusters (``None``: n_queries // (4 * batch_size), at least 2).
        clusters_per_batch: clusters each batch is drawn from.
        margin_bins: teacher-margin bins for balanced pair sampling.
        cluster_on: embeddings clustered: ``guide`` or ``teacher`` (the first dense teacher).
    """

    name: Literal["random", "tas_balanced"] = "random"
    clusters: int | None = None
    clusters_per_batch: int = 1
    margin_bins: int = 10
    cluster_on: Literal["guide", "teacher"] = "guide"


@dataclass
class TeacherConfig:
    """One member of the teacher ensemble.

    Attributes:
        kind: ``dense`` (bi-encoder), ``sparse`` (siamese SPLADE), ``cross`` (CrossEncoder) or ``bm25``.
        model: hub id or path (ignored for ``bm25``); a local folder's cached scores are keyed by
            its files too (``retrieval.identity``), so a teacher trained again in place is rescored.
        weight: weight of its min-max normalised scores in the ensemble.
        max_length: tokens the teacher reads per text (``None``: the model's own limit).
    """

    kind: Literal["dense", "sparse", "cross", "bm25"] = "dense"
    model: str | None = None
    weight: float = 1.0
    max_length: int | None = 256


@dataclass
class TrainingConfig:
    """Optimisation and bookkeeping (passed to ``SentenceTransformerTrainingArguments``).

    ``max_steps`` -1 trains for ``epochs``; a positive value is the number of steps (overrides ``epochs``).
    ``batch_size`` is per process; an optimiser step sees ``batch_size x gradient_accumulation x`` the
    number of processes (``winnow train --nproc``) rows.

    ``max_length`` is the token limit per text during training; the saved model keeps the base
    model's own limit for inference. ``average_last`` > 1 saves the mean of the weights of the last
    that many checkpoints (one per epoch unless ``save_steps``) instead of the final weights
    (latest-weight averaging; ``trainers.soup.average_checkpoints``).
    """

    batch_size: int = 32
    gradient_accumulation: int = 1
    epochs: float = 1.0
    max_steps: int = -1
    learning_rate: float = 2e-5
    warmup_ratio: float = 0.1
    scheduler: str = "linear"
    weight_decay: float = 0.01
    seed: int = 42
    precision: Literal["fp32", "fp16", "bf16"] = "fp32"
    max_length: int | None = 256
    eval_steps: int | None = None
    save_steps: int | None = None
    save_total_limit: int = 2
    logging_steps: int = 5
    average_last: int = 1


@dataclass
class TrainConfig:
    """A whole training recipe.

    ``kind``: ``dense`` (bi-encoder), ``sparse`` (inference-free SPLADE) or ``cross`` (a reranker).
    ``model``: a hub id or path, or a mapping with pooling and decoder options
    (:class:`~trainers.model_config.ModelConfig`).
    ``cache_dir`` holds what frozen models computed (embeddings, mined negatives, teacher scores,
    clusters), keyed by model, settings and texts, so it is safe to share between runs and checkouts.
    """

    kind: Literal["dense", "sparse", "cross"] = "dense"
    model: str | ModelConfig = "sentence-transformers/all-MiniLM-L6-v2"
    output: str | None = None
    cache_dir: str = field(default_factory=default_cache_dir)
    data: DataConfig = field(default_factory=DataConfig)
    mining: MiningConfig = field(default_factory=MiningConfig)
    guide: GuideConfig | None = field(default_factory=GuideConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    sampler: SamplerConfig = field(default_factory=SamplerConfig)
    teachers: list[TeacherConfig] = field(default_factory=list)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    sparse: SparseConfig = field(default_factory=SparseConfig)

    @property
    def model_name(self) -> str:
        """The base model's hub id or path, whichever form ``model`` takes."""
        return self.model if isinstance(self.model, str) else self.model.name

    @property
    def model_spec(self) -> ModelConfig:
        """``model`` as a :class:`~trainers.model_config.ModelConfig` (a bare name changes nothing)."""
        return ModelConfig(name=self.model) if isinstance(self.model, str) else self.model

    def validate(self, where: str = "config") -> TrainConfig:
        """Check cross-field rules that types alone cannot express (``trainers.config_checks``)."""
        from trainers.config_checks import check_config

        check_config(self, where)
        return self


def load_config(
    path: str | Path, overrides: dict[str, Any] | None = None, data_root: Path | None = None
) -> TrainConfig:
    """Read and validate a YAML recipe.

    Args:
        path: the YAML file.
        overrides: dotted keys (``training.max_steps``) mapped to values, applied before validation.
        data_root: the data root (:func:`retrieval.settings.data_root`); when given, every data-set
            name in the recipe (``data.dataset``, ``data.extra_datasets``, ``sparse.idf_corpora``)
            becomes the path of its folder (:func:`trainers.data_paths.resolve_datasets`). ``None``
            leaves names as they are (tests and tools that only read a recipe).

    Example:
        >>> from retrieval.settings import data_root
        >>> config = load_config("configs/dense-mnrl.yaml", data_root=data_root(None))  # doctest: +SKIP
        >>> config.data.dataset  # doctest: +SKIP
        '/home/me/winnow/data/beir/scifact'
    """
    path = Path(path)
    raw = read_yaml(path, overrides)
    config = from_dict(TrainConfig, raw, str(path)).validate(str(path))
    if data_root is None:
        return config
    from trainers.data_paths import resolve_datasets

    return resolve_datasets(config, data_root, str(path))


def to_dict(config: TrainConfig) -> dict[str, Any]:
    return dataclasses.asdict(config)
