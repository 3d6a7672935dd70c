"""Encode a corpus on a Ray cluster: shards of documents over Ray Data actors, one model copy each.

``winnow index --ray [ADDRESS]`` uses it for dense encoders. The corpus is cut into shards of
``shard_size`` documents; the shards still to encode go through one Ray Data job, ``map_batches`` over
an actor pool (one model copy per actor, a GPU each when the cluster has GPUs, else one CPU each), in
order, and each shard's vectors are written to ``OUT_DIR/ray-<fingerprint>/shard-NNNNN.npy`` as soon
as its last vector arrives. A shard already on disk is skipped, so an interrupted run resumes where it
stopped; the fingerprint covers the model, its length limit and every document, so a changed corpus
or model starts afresh. Ray is imported only here: without
``--ray`` nothing imports it.

Every worker must be able to import Winnow and load the model (the same environment, or a Ray
``runtime_env``); a local run (``address=None``) starts a Ray instance on this machine, which costs
about ten seconds, so Ray pays off on a cluster, not on a laptop.

Example:
    >>> embeddings = ray_embed_corpus("sentence-transformers/all-MiniLM-L6-v2", "data/beir/scifact",
    ...                               "runs/ray-shards", address="auto")
    >>> retriever.add_embeddings(embeddings)
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from indexes.io import write_file_atomic
from retrieval.corpus import CorpusSource, Document, document_text, iter_corpus
from retrieval.embed import Embeddings, scan_corpus

logger = logging.getLogger(__name__)


class _EncodeBatch:
    """A Ray Data actor: one encoder, loaded once, embedding batches of texts."""

    def __init__(self, name: str, max_length: int | None, batch_size: int) -> None:
        from retrieval.encoders import load_encoder

        self.encoder = load_encoder(name, max_length=max_length)
        self.batch_size = batch_size

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        texts = [str(t) for t in batch["text"]]
        return {"vector": np.asarray(self.encoder.encode_documents(texts, batch_size=self.batch_size))}


def ray_embed_corpus(
    model: str,
    corpus: CorpusSource | Sequence[Document],
    out_dir: str | Path,
    *,
    address: str | None = None,
    actors: int | None = None,
    shard_size: int = 50_000,
    batch_size: int = 64,
    max_length: int | None = None,
) -> Embeddings:
    """Encode ``corpus`` with the dense model ``model`` on Ray, shard by shard, resumably.

    Args:
        model: hub id or folder of a dense model (every worker loads it).
        corpus: a BEIR folder, a JSONL path, or ``{"_id", "title", "text"}`` dicts.
        out_dir: where the shards are kept between runs.
        address: a Ray cluster (``auto``, ``ray://host:10001``); ``None`` starts a local instance.
        actors: encoder actors per shard (default: one per GPU, else one per CPU of the cluster).
        shard_size: documents per shard (the unit of resumption).
        batch_size: texts per forward pass in an actor.
        max_length: tokens per text (default: the model's).

    Returns:
        the ids and their vectors, row for row, in corpus order.
    """
    import ray

    if shard_size < 1:
        raise ValueError(f"shard_size {shard_size}: expected an integer >= 1")
    docs = list(iter_corpus(corpus)) if isinstance(corpus, str | Path) else list(corpus)
    ids, fingerprint = scan_corpus(docs, model, 0)  # the model's files and every document
    texts = [document_text(d) for d in docs]
    del docs
    # a new model, length limit, shard size or corpus starts afresh
    folder = Path(out_dir) / f"ray-{fingerprint[:16]}-{max_length or 'model'}-{shard_size}"
    folder.mkdir(parents=True, exist_ok=True)
    shards = [folder / f"shard-{s:05d}.npy" for s in range(-(-len(ids) // shard_size))]
    pending = [s for s, path in enumerate(shards) if not path.is_file()]
    on_disk = len(shards) - len(pending)
    logger.info(
        "%d documents in %d shards; %d to encode, %d on disk", len(ids), len(shards), len(pending), on_disk
    )
    if pending:
        (folder / "vectors.npy").unlink(missing_ok=True)  # joined again once the shards are complete
        ray.init(address=address, ignore_reinit_error=True, include_dashboard=False, log_to_driver=False)
        ray.data.DataContext.get_current().execution_options.preserve_order = True
        resources = ray.cluster_resources()
        gpus = int(resources.get("GPU", 0))
        pool = actors or max(1, gpus or int(resources.get("CPU", 1)))
        logger.info("Ray: %d encoder actors (%s)", pool, f"{gpus} GPUs" if gpus else "CPUs")
        rows = [{"text": t} for s in pending for t in texts[s * shard_size : (s + 1) * shard_size]]
        encoded = ray.data.from_items(rows).map_batches(
            _EncodeBatch,
            fn_constructor_kwargs={"name": model, "max_length": max_length, "batch_size": batch_size},
            batch_size=batch_size,
            batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=pool),
            num_gpus=1 if gpus else 0,
        )
        # one job over every pending shard (the actors load the model once); results arrive in order,
        # and each shard is written the moment its last vector is in
        queue, buffer, have = list(pending), [], 0
        for batch in encoded.iter_batches(batch_size=None, batch_format="numpy"):
            buffer.append(np.asarray(batch["vector"], dtype=np.float32))
            have += len(buffer[-1])
            while queue and have >= (need := len(texts[queue[0] * shard_size : (queue[0] + 1) * shard_size])):
                joined = np.concatenate(buffer)
                shard, rest = joined[:need], joined[need:]
                write_file_atomic(shards[queue[0]], lambda tmp, v=shard: np.save(tmp, v))
                logger.info(
                    "shard %d written (%d of %d pending)",
                    queue[0],
                    len(pending) - len(queue) + 1,
                    len(pending),
                )
                queue.pop(0)
                buffer, have = [rest], len(rest)
        if queue:
            raise RuntimeError(f"Ray returned too few vectors: shards {queue} are incomplete")
    return Embeddings(ids=ids, vectors=_join(shards, folder / "vectors.npy", len(ids)))


def _join(shards: list[Path], path: Path, n: int) -> np.ndarray:
    """The shards as one read-only memory-mapped matrix (written once, shard by shard)."""
    if not path.is_file():
        first = np.load(shards[0], mmap_mode="r")

        def write(tmp: Path) -> None:
            out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=(n, first.shape[1]))
            start = 0
            for shard in shards:
                rows = np.load(shard, mmap_mode="r")
                out[start : start + len(rows)] = rows
                start += len(rows)
            if start != n:
                raise RuntimeError(f"the shards in {path.parent} hold {start} vectors for {n} documents")
            out.flush()

        write_file_atomic(path, write)
    return np.load(path, mmap_mode="r")
