"""``train_dense(config)``: fine-tune a sentence-transformers bi-encoder with Winnow's recipe.

Steps, each cached so a rerun or ``--resume`` repeats no work:
1. training pairs (``trainers.data``);
2. hard negatives mined by the student, the guide or BM25, filtered by the guide (``trainers.mining``);
3. guide embeddings of every training text (``trainers.guide``), so GIST needs no guide forward pass;
4. teacher ensemble scores, per-query min-max normalised (``trainers.teachers``);
5. rows with text ids and teacher scores (``trainers.rows``), a query-level batch sampler
   (random or TAS-Balanced, ``trainers.samplers``) and the loss (``trainers.losses``);
6. ``SentenceTransformerTrainer`` with dev nDCG@10 scoring, checkpoints and the best model kept.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from indexes.io import atomic_directory, write_meta
from retrieval.encoders import DenseEncoder, Encoder, load_encoder
from trainers.checkpoints import latest_checkpoint
from trainers.config import LossConfig, TeacherConfig, TrainConfig, to_dict
from trainers.data import TrainingData, load_training_data
from trainers.dev import DEV_METRIC, build_dev_evaluator
from trainers.embedding_cache import EmbeddingCache
from trainers.guide import Guide
from trainers.losses import (
    CachedGuideGISTLoss,
    CombinedLoss,
    EnsembleKLLoss,
    EnsembleMarginMSELoss,
    InBatchMarginMSELoss,
)
from trainers.mining import Searcher, SparseSearcher, build_searcher, interleave, mine_hard_negatives
from trainers.report import plot_history, write_log
from trainers.rows import TrainingRows, build_rows
from trainers.samplers import (
    QueryBatchSampler,
    TASBalancedBatchSampler,
    cluster_queries,
    default_cluster_count,
    sampler_factory,
)
from trainers.soup import average_checkpoints
from trainers.teachers import BM25Teacher, CrossEncoderTeacher, DenseTeacher, Ensemble, SparseTeacher, Teacher

logger = logging.getLogger(__name__)


class Recipe:
    """The cached, model-independent preparation shared by the dense and sparse trainers."""

    def __init__(self, config: TrainConfig, student_encoder: Encoder | None = None) -> None:
        """``student_encoder`` mines with ``mining.model: student`` (dense: FAISS over cached embeddings;
        sparse: the embedded inverted index); its name goes into the mined-negative cache key."""
        self.config = config
        self.cache_root = Path(config.cache_dir)
        self.data: TrainingData = load_training_data(config.data)
        self.student_encoder = student_encoder
        self._searcher: Searcher | None = None
        self.guide: Guide | None = None
        if config.guide is not None:
            encoder = load_encoder(config.guide.model, max_length=config.guide.max_length)
            self.guide = Guide(
                encoder, self.embedding_cache(encoder), config.guide.margin_strategy, config.guide.margin
            )

    def embedding_cache(self, encoder: Any) -> EmbeddingCache:
        return EmbeddingCache(encoder, self.cache_root / "embeddings")

    def searcher(self) -> Searcher:
        """The miner ``mining.model`` names, built once (it also fills ``loss.teacher_pool``)."""
        if self._searcher is None:
            self._searcher = self._build_searcher(self.config.mining.model)
        return self._searcher

    def _build_searcher(self, model: str) -> Searcher:
        if model == "student":
            if self.student_encoder is None:
                raise ValueError(
                    "mining model 'student' needs a student encoder; choose guide, bm25 or a model id"
                )
            if getattr(self.student_encoder, "kind", "dense") == "sparse":
                return SparseSearcher(self.student_encoder, self.data.search_corpus)
            return build_searcher("dense", self.data, self.embedding_cache(self.student_encoder))
        if model == "guide":
            return build_searcher("dense", self.data, self.guide.cache)  # type: ignore[union-attr]
        if model == "bm25":
            return build_searcher("bm25", self.data, None)
        return build_searcher("dense", self.data, self.embedding_cache(load_encoder(model)))

    def negatives(self) -> dict[str, list[str]]:
        """Given negatives first, then each miner's in turn (``mining.model``, then ``extra_models``)."""
        mining = self.config.mining
        given = {q: list(d) for q, d in self.data.negatives.items()}
        if not mining.enabled:
            return given
        cache = self.cache_root / "negatives"
        searchers = [self.searcher(), *(self._build_searcher(m) for m in mining.extra_models)]
        mined = [mine_hard_negatives(self.data, s, mining, self.guide, cache) for s in searchers]
        negatives = {
            q: list(dict.fromkeys([*given.get(q, []), *interleave([m.get(q, []) for m in mined])]))[
                : max(mining.num_negatives, 1)
            ]
            for q in self.data.query_ids
        }
        return self.fill_empty(negatives)

    def fill_empty(self, negatives: dict[str, list[str]]) -> dict[str, list[str]]:
        """A query whose candidates were all filtered keeps its rows with one random (easy) negative."""
        rng = np.random.default_rng(self.config.training.seed)
        doc_ids = list(self.data.search_corpus)
        searchable = set(doc_ids)
        filled = 0
        for qid, docs in negatives.items():
            if docs:
                continue
            excluded = self.data.excluded(qid)
            if len(excluded & searchable) >= len(doc_ids):
                continue
            candidate = doc_ids[int(rng.integers(len(doc_ids)))]
            while candidate in excluded:
                candidate = doc_ids[int(rng.integers(len(doc_ids)))]
            negatives[qid] = [candidate]
            filled += 1
        if filled:
            logger.info("%d queries had no negative left after filtering; each got a random one", filled)
        return negatives

    def teachers(self) -> Ensemble | None:
        if not self.config.teachers:
            return None
        members: list[Teacher] = []
        for spec in self.config.teachers:
            if spec.kind == "dense":
                cache = self.dense_teacher_cache(spec)
                members.append(DenseTeacher(cache))
            elif spec.kind == "sparse":
                members.append(SparseTeacher(spec.model, max_length=spec.max_length or 512))
            elif spec.kind == "cross":
                members.append(CrossEncoderTeacher(spec.model))
            else:
                members.append(BM25Teacher(self.data.corpus))
        return Ensemble(members, [t.weight for t in self.config.teachers], self.cache_root / "teacher_scores")

    def pools(self, depth: int) -> dict[str, list[str]]:
        """Each query's top ``depth`` candidates from the miner (never its positives or known matches)."""
        query_ids = self.data.query_ids
        extra = max(len(self.data.excluded(q)) for q in query_ids)
        ids, _ = self.searcher().search([self.data.queries[q] for q in query_ids], depth + extra)
        pools = {}
        for qid, ranked in zip(query_ids, ids, strict=True):
            excluded = self.data.excluded(qid)
            pools[qid] = [d for d in ranked if d not in excluded][:depth]
        return pools

    def rows(self) -> TrainingRows:
        negatives = self.negatives()
        teachers = self.teachers()
        depth = self.config.loss.teacher_pool
        pools = self.pools(depth) if depth and teachers is not None else None
        return build_rows(self.data, negatives, teachers, pools)

    def dense_teacher_cache(self, spec: TeacherConfig) -> EmbeddingCache:
        """The embedding cache of a dense teacher: the guide's when the teacher is the guide."""
        guide = self.config.guide
        same_as_guide = guide is not None and (spec.model, spec.max_length) == (guide.model, guide.max_length)
        if same_as_guide and self.guide is not None:
            return self.guide.cache
        return self.embedding_cache(load_encoder(spec.model, max_length=spec.max_length))

    @staticmethod
    def table_matrix(rows: TrainingRows, cache: EmbeddingCache) -> np.ndarray:
        """``cache``'s embedding of every text in the row table, row ``i`` for text id ``i``."""
        out = np.zeros((len(rows.table), cache.encoder.dim), dtype=np.float32)
        for role in ("query", "document"):
            ids, texts = rows.table.by_role(role)
            if len(ids):
                out[ids] = cache.get(texts, role)
        return out

    def guide_matrix(self, rows: TrainingRows) -> np.ndarray:
        """Guide embedding of every text in the row table, row ``i`` for text id ``i``."""
        if self.guide is None:
            raise ValueError("no guide configured")
        return self.table_matrix(rows, self.guide.cache)

    def teacher_matrix(self, rows: TrainingRows) -> np.ndarray:
        """The first dense teacher's embedding of every text in the row table (the guide's when equal)."""
        spec = next((t for t in self.config.teachers if t.kind == "dense"), None)
        if spec is None:
            raise ValueError("no teacher of kind 'dense' configured")
        return self.table_matrix(rows, self.dense_teacher_cache(spec))

    def batch_sampler(self, rows: TrainingRows):
        sampler = self.config.sampler
        if sampler.name == "random":
            return sampler_factory(QueryBatchSampler, row_query=rows.row_query)
        n_queries = len(rows.query_ids)
        texts = [self.data.queries[q] for q in rows.query_ids]
        if sampler.cluster_on == "guide" and self.guide is not None:
            embeddings = self.guide.embed(texts, "query")
        else:
            dense = next((t for t in self.config.teachers if t.kind == "dense"), None)
            if dense is None:
                raise ValueError("sampler.cluster_on 'teacher' needs a dense teacher")
            encoder = load_encoder(dense.model, max_length=dense.max_length)
            embeddings = self.embedding_cache(encoder).get(texts, "query")
        k = sampler.clusters or default_cluster_count(n_queries, self.config.training.batch_size)
        clusters = self.cached_clusters(embeddings, k)
        logger.info(
            "TAS-Balanced: %d queries in %d clusters, %d per batch", n_queries, k, sampler.clusters_per_batch
        )
        return sampler_factory(
            TASBalancedBatchSampler,
            row_query=rows.row_query,
            query_cluster=clusters,
            row_margin=rows.row_margin,
            clusters_per_batch=sampler.clusters_per_batch,
            n_bins=sampler.margin_bins,
        )

    def cached_clusters(self, embeddings: np.ndarray, k: int) -> np.ndarray:
        """K-means assignment of the training queries, computed once per embeddings, k and seed."""
        seed = self.config.training.seed
        digest = hashlib.sha1(np.ascontiguousarray(embeddings, dtype=np.float32).tobytes())
        digest.update(f"{k}|{seed}".encode())
        path = self.cache_root / "clusters" / f"clusters-{digest.hexdigest()[:16]}.npy"
        if path.is_file():
            return np.load(path)
        clusters = cluster_queries(embeddings, k, seed=seed)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp.npy")
        np.save(tmp, clusters)
        tmp.replace(path)
        return clusters


def distillation_loss(
    model: Any, spec: LossConfig, similarity: str = "cosine", margin_scale: float | None = None
) -> Any:
    """The distillation term ``spec.distill`` names (``margin_mse`` or ``kl``), shared by both trainers.

    ``margin_scale`` overrides ``spec.margin_scale`` for Margin-MSE (the sparse trainer resolves
    ``auto`` on its rows first); KL ignores it.
    """
    if spec.distill == "margin_mse":
        scale = float(spec.margin_scale if margin_scale is None else margin_scale)
        return EnsembleMarginMSELoss(
            model, scale, similarity=similarity, teacher_margin_floor=spec.teacher_margin_floor
        )
    if spec.distill == "kl":
        return EnsembleKLLoss(
            model, spec.distill_temperature, spec.teacher_temperature, similarity=similarity
        )
    raise ValueError(f"loss.distill {spec.distill!r} is not supported; expected margin_mse or kl")


def build_loss(config: TrainConfig, model: Any, recipe: Recipe, rows: TrainingRows):
    """The loss the recipe names, with the distillation term added when configured."""
    from sentence_transformers.sentence_transformer.losses import GISTEmbedLoss, MultipleNegativesRankingLoss

    spec = config.loss
    if spec.name == "mnrl":
        contrastive = MultipleNegativesRankingLoss(model, scale=1.0 / spec.temperature)
    elif spec.name == "st_gist":
        contrastive = GISTEmbedLoss(
            model,
            recipe.guide.encoder.model,
            temperature=spec.temperature,  # type: ignore[union-attr]
            margin_strategy=config.guide.margin_strategy,
            margin=config.guide.margin,  # type: ignore[union-attr]
            contrast_anchors=spec.contrast_anchors,
            contrast_positives=spec.contrast_positives,
        )
    else:
        contrastive = CachedGuideGISTLoss(
            model,
            recipe.guide_matrix(rows),
            temperature=spec.temperature,
            margin_strategy=config.guide.margin_strategy,
            margin=config.guide.margin,  # type: ignore[union-attr]
            contrast_anchors=spec.contrast_anchors,
            contrast_positives=spec.contrast_positives,
        )
    terms = [(contrastive, spec.contrastive_weight)] if spec.contrastive_weight else []
    if spec.distill is not None:
        terms.append((distillation_loss(model, spec), spec.distill_weight))
    if spec.in_batch_weight:
        term = InBatchMarginMSELoss(
            model,
            recipe.teacher_matrix(rows),
            margin_scale=float(spec.margin_scale),
            normalise=spec.in_batch_normalise,
        )
        terms.append((term, spec.in_batch_weight))
    if len(terms) == 1:
        return terms[0][0]
    if not terms:
        raise ValueError("the loss has no term: set loss.contrastive_weight > 0 or loss.distill")
    if not hasattr(contrastive, "loss_from_embeddings") and spec.contrastive_weight:
        raise ValueError(f"loss {spec.name!r} cannot be combined with distillation; use loss.name: gist")
    return CombinedLoss(model, terms)


def training_arguments(
    config: TrainConfig,
    checkpoints: Path,
    batch_sampler: Any,
    has_dev: bool,
    arguments_class: Any = None,
    **extra: Any,
):
    """Trainer arguments from the recipe (``arguments_class``: the sparse trainer's own class)."""
    from sentence_transformers import SentenceTransformerTrainingArguments

    t = config.training
    strategy = "steps" if t.eval_steps else "epoch"
    return (arguments_class or SentenceTransformerTrainingArguments)(
        output_dir=str(checkpoints),
        num_train_epochs=t.epochs,
        max_steps=t.max_steps,
        per_device_train_batch_size=t.batch_size,
        per_device_eval_batch_size=t.batch_size,
        learning_rate=t.learning_rate,
        warmup_steps=t.warmup_ratio,  # a float below 1 is a ratio of the total steps (transformers 5)
        lr_scheduler_type=t.scheduler,
        weight_decay=t.weight_decay,
        seed=t.seed,
        data_seed=t.seed,
        fp16=t.precision == "fp16",
        bf16=t.precision == "bf16",
        batch_sampler=batch_sampler,
        eval_strategy=strategy if has_dev else "no",
        eval_steps=t.eval_steps,
        save_strategy=strategy,
        save_steps=t.save_steps or t.eval_steps,
        save_total_limit=max(t.save_total_limit, t.average_last),
        load_best_model_at_end=has_dev,
        metric_for_best_model=DEV_METRIC if has_dev else None,
        greater_is_better=True,
        logging_steps=t.logging_steps,
        report_to="none",
        dataloader_drop_last=False,
        disable_tqdm=False,
        **extra,
    )


def train_dense(config: TrainConfig, output: str | Path, resume: bool = False) -> Path:
    """Train the recipe and write the model (sentence-transformers format) to ``output``.

    Checkpoints go to ``OUTPUT.checkpoints/``; with ``resume`` the latest one is continued.
    ``output`` also receives ``meta.json``, ``training_log.jsonl`` and ``training_curve.png``.
    """
    from sentence_transformers import SentenceTransformer, SentenceTransformerTrainer
    from transformers import set_seed

    output = Path(output)
    set_seed(config.training.seed)
    model = SentenceTransformer(config.model)
    inference_max_length = model.max_seq_length
    recipe = Recipe(config, DenseEncoder(model, name=config.model))
    rows = recipe.rows()  # mines with the student at its inference length
    if config.training.max_length:
        model.max_seq_length = config.training.max_length
    logger.info(
        "%d training rows for %d queries, %d distinct texts", len(rows), len(rows.query_ids), len(rows.table)
    )
    loss = build_loss(config, model, recipe, rows)
    evaluator = None
    if config.data.dev_split:
        evaluator = build_dev_evaluator(
            config.data.dataset, config.data.dev_split, config.data.dev_max_queries
        )
    checkpoints = output.with_name(output.name + ".checkpoints")
    args = training_arguments(config, checkpoints, recipe.batch_sampler(rows), evaluator is not None)
    trainer = SentenceTransformerTrainer(
        model=model, args=args, train_dataset=rows.to_dataset(), loss=loss, evaluator=evaluator
    )
    checkpoint = latest_checkpoint(checkpoints) if resume else None
    if resume and checkpoint is None:
        logger.warning("--resume: no checkpoint in %s; starting from scratch", checkpoints)
    elif checkpoint:
        logger.info("resuming from %s", checkpoint)
    trainer.train(resume_from_checkpoint=checkpoint)
    if config.training.average_last > 1 and trainer.is_world_process_zero():
        average_checkpoints(model, checkpoints, config.training.average_last, SentenceTransformer)
    history = trainer.state.log_history
    best = max((e[DEV_METRIC] for e in history if DEV_METRIC in e), default=None)
    model.max_seq_length = inference_max_length  # training may truncate harder than inference should
    if not trainer.is_world_process_zero():  # under DDP only rank 0 writes the model
        return output
    with atomic_directory(output) as tmp:
        model.save(str(tmp))
        write_log(history, tmp / "training_log.jsonl")
        plot_history(history, tmp / "training_curve.png", title=f"{config.model} -> {output.name}")
        write_meta(
            tmp,
            "model",
            model_type="dense",
            base_model=config.model,
            steps=trainer.state.global_step,
            best_dev_ndcg_at_10=best,
            config=to_dict(config),
        )
    shutil.rmtree(checkpoints, ignore_errors=True)
    logger.info(
        "wrote %s (%d steps%s)",
        output,
        trainer.state.global_step,
        f", best dev nDCG@10 {best:.4f}" if best is not None else "",
    )
    return output
