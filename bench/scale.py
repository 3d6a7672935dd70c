"""Scale: encode, index and mine a corpus of up to 1M documents in bounded memory, stage by stage.

A deterministic corpus of real text (sentences of the BEIR corpora under the data root, sampled and
recombined with a fixed seed) goes through one child process per stage, whose peak resident memory
(``ru_maxrss`` of the process and the children it waited for) and wall time are reported with the
size of what it wrote:

- dense: a tiny random BERT (2 layers, hidden 32, mean pooling, 128 tokens; a WordPiece tokenizer of
  8,192 tokens trained on the corpus) encodes into a resumable embedding cache (``embed_corpus``);
  ``winnow index`` builds FAISS Flat and Milvus Lite from that cache;
- sparse: a static sparse model (sentence-transformers' ``SparseStaticEmbedding`` on both sides: each
  distinct token of a text weighted by a fixed random weight, so real token statistics) encodes into
  CSR chunks, from which the embedded inverted index and Milvus Lite are built and saved as
  ``winnow index`` folders; the vectors come from the tokenizer and the weight table directly, and the
  first chunk is checked equal to the model's own ``encode_documents``;
- mining: ``winnow train`` with the tiny dense student mining 4 hard negatives for 1,000 queries
  (each the first sentence of a document, that document its positive) over the ``--mining`` corpus:
  one training step, so its time is the preparation (embedding the corpus, FAISS, search).

The models are random: their throughput is that of a very small encoder, not of a real one; the
vectors exercise the indexes at a realistic shape::

    python -m bench.scale --sizes 100000 1000000 --mining 500000 --json runs/bench/scale.json
    python -m bench.scale --sizes 2000 --mining 2000 --work runs/bench/scale-quick   # a quick check
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from scipy import sparse

from bench.common import command_line, log_progress, save_record
from retrieval.settings import data_root

logger = logging.getLogger("bench.scale")

SOURCES = ("scifact", "nfcorpus")
VOCABULARY = 8192
CHUNK = 50_000  # documents per sparse chunk


def sentences(root: Path) -> list[str]:
    """Every sentence of the source corpora's titles and texts, in file order."""
    found: list[str] = []
    for name in SOURCES:
        path = root / "beir" / name / "corpus.jsonl"
        if not path.is_file():
            raise FileNotFoundError(f"{path} not found: the scale corpus is built from {', '.join(SOURCES)}")
        with path.open(encoding="utf-8") as lines:
            for line in lines:
                doc = json.loads(line)
                text = f"{doc.get('title', '')}. {doc.get('text', '')}"
                found += [s.strip() for s in re.split(r"(?<=[.!?])\s+", text) if len(s.strip()) > 20]
    return found


def document_sentences(pool_size: int, n: int, seed: int = 0) -> Iterator[np.ndarray]:
    """The sentence numbers of each of ``n`` documents: 3-8 draws from a pool of ``pool_size`` (fixed
    seed); the first ``m`` documents of a larger draw equal the ``m``-document draw."""
    rng = np.random.default_rng(seed)
    for _ in range(n):
        yield rng.integers(0, pool_size, size=int(rng.integers(3, 9)))


def write_corpus(pool: list[str], n: int, path: Path, seed: int = 0) -> Path:
    """``n`` documents of 3-8 sentences drawn from ``pool`` (:func:`document_sentences`), as BEIR
    ``corpus.jsonl``; the first ``m`` documents of a larger corpus equal the ``m``-document corpus."""
    if path.is_file():
        return path
    tmp = path.with_suffix(".tmp")
    path.parent.mkdir(parents=True, exist_ok=True)
    with tmp.open("w", encoding="utf-8") as out:
        for i, picks in enumerate(document_sentences(len(pool), n, seed)):
            text = " ".join(pool[j] for j in picks)
            out.write(json.dumps({"_id": f"s{i}", "title": "", "text": text}) + "\n")
    tmp.replace(path)
    return path


def write_training_set(corpus: Path, folder: Path, queries: int = 1000) -> Path:
    """A BEIR folder over ``corpus``: each query is the first sentence of one document, its positive."""
    folder.mkdir(parents=True, exist_ok=True)
    if not (folder / "corpus.jsonl").exists():
        (folder / "corpus.jsonl").symlink_to(corpus.resolve())
    (folder / "qrels").mkdir(exist_ok=True)
    with corpus.open(encoding="utf-8") as lines:
        docs = [json.loads(next(lines)) for _ in range(queries)]
    with (folder / "queries.jsonl").open("w", encoding="utf-8") as out:
        for i, doc in enumerate(docs):
            out.write(json.dumps({"_id": f"q{i}", "text": doc["text"].split(". ")[0]}) + "\n")
    rows = ["query-id\tcorpus-id\tscore"] + [f"q{i}\t{doc['_id']}\t1" for i, doc in enumerate(docs)]
    (folder / "qrels" / "train.tsv").write_text("\n".join(rows) + "\n")
    return folder


def build_models(pool: list[str], work: Path) -> tuple[Path, Path]:
    """The tiny dense model and the static sparse model, sharing a WordPiece tokenizer trained on ``pool``."""
    import torch
    from sentence_transformers import SentenceTransformer, SparseEncoder
    from sentence_transformers.base.modules import Router
    from sentence_transformers.sentence_transformer.modules import Pooling, Transformer
    from sentence_transformers.sparse_encoder.modules import SparseStaticEmbedding
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import BertConfig, BertModel, BertTokenizerFast

    dense, static = work / "tiny-dense", work / "static-sparse"
    if (dense / "modules.json").is_file() and (static / "modules.json").is_file():
        return dense, static
    backend = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    backend.normalizer = normalizers.BertNormalizer(lowercase=True)
    backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    backend.train_from_iterator(
        pool, trainers.WordPieceTrainer(vocab_size=VOCABULARY, special_tokens=special)
    )
    ids = [("[CLS]", backend.token_to_id("[CLS]")), ("[SEP]", backend.token_to_id("[SEP]"))]
    backend.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B [SEP]", special_tokens=ids
    )
    names = ("pad_token", "unk_token", "cls_token", "sep_token", "mask_token")
    tokenizer = BertTokenizerFast(tokenizer_object=backend, **dict(zip(names, special, strict=True)))
    config = BertConfig(
        vocab_size=backend.get_vocab_size(), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=512,
    )  # fmt: skip
    torch.manual_seed(0)
    BertModel(config).save_pretrained(work / "hf-dense")
    tokenizer.save_pretrained(work / "hf-dense")
    transformer = Transformer(str(work / "hf-dense"), max_seq_length=128)
    SentenceTransformer(modules=[transformer, Pooling(32, "mean")]).save(str(dense))
    weight = torch.rand(backend.get_vocab_size(), generator=torch.Generator().manual_seed(0)) * 1.5 + 0.5
    router = Router.for_query_document(
        query_modules=[SparseStaticEmbedding(tokenizer, weight=weight.clone(), frozen=True)],
        document_modules=[SparseStaticEmbedding(tokenizer, weight=weight, frozen=True)],
    )
    SparseEncoder(modules=[router], similarity_fn_name="dot").save(str(static))
    return dense, static


def static_vectors(tokenizer: Any, weight: np.ndarray, texts: list[str]) -> sparse.csr_matrix:
    """What ``SparseStaticEmbedding`` computes for ``texts``: each distinct token's weight."""
    encoded = tokenizer(texts, add_special_tokens=False)["input_ids"]
    rows = [np.unique(np.asarray(ids, dtype=np.int64)) for ids in encoded]
    indptr = np.concatenate([[0], np.cumsum([len(r) for r in rows])])
    columns = np.concatenate(rows) if rows else np.zeros(0, np.int64)
    return sparse.csr_matrix((weight[columns], columns, indptr), shape=(len(texts), len(weight)))


def read_texts(corpus: Path) -> Iterator[tuple[list[str], list[str]]]:
    """``(ids, texts)`` chunks of :data:`CHUNK` documents."""
    with corpus.open(encoding="utf-8") as lines:
        while batch := [json.loads(line) for _, line in zip(range(CHUNK), lines, strict=False)]:
            yield [d["_id"] for d in batch], [d["text"] for d in batch]


def stage(name: str, n: int, work: Path) -> None:
    """One stage, in this (child) process."""
    from retrieval.encoders import load_encoder

    corpus, dense, sparse_model = work / f"corpus-{n}.jsonl", work / "tiny-dense", work / "static-sparse"
    if name == "dense-encode":
        from retrieval.embed import embed_corpus

        embed_corpus(load_encoder(dense), corpus, out_dir=work / "cache" / f"dense-{n}", batch_size=512)
        return
    vectors = work / "cache" / f"sparse-{n}"
    encoder = load_encoder(sparse_model)
    if name == "sparse-encode":
        from sentence_transformers.sparse_encoder.modules import SparseStaticEmbedding

        module = next(m for m in encoder.model.modules() if isinstance(m, SparseStaticEmbedding))
        weight = module.weight.detach().numpy()
        vectors.mkdir(parents=True, exist_ok=True)
        for i, (ids, texts) in enumerate(read_texts(corpus)):
            matrix = static_vectors(module.tokenizer, weight, texts)
            if i == 0:  # the shortcut computes what the model computes
                reference = encoder.encode_documents(texts[:500])
                assert abs(reference - matrix[:500]).max() < 1e-6, "static vectors differ from the model's"
            sparse.save_npz(vectors / f"{i:05d}.npz", matrix)
            (vectors / f"{i:05d}.ids").write_text("\n".join(ids))
        return
    from retrieval.retriever import Retriever

    index = "inverted" if name == "sparse-inverted" else "milvus"
    out = work / "index" / f"{name}-{n}"
    retriever = Retriever(encoder, index=index, milvus_collection=f"winnow_scale_{n}")
    for part in sorted(vectors.glob("*.npz")):
        retriever.index.add(sparse.load_npz(part), part.with_suffix(".ids").read_text().split("\n"))
    retriever.save(out)


def run_child(argv: list[str]) -> dict[str, float]:
    """Run ``python ARGV``; return its seconds, the peak of its process tree's summed resident memory
    (sampled every 0.2 s: a Milvus Lite server runs beside its client) and the largest single
    process's peak (``ru_maxrss`` from ``wait4``, exact), in MiB."""
    import psutil

    logger.info("python %s", " ".join(argv))
    start = time.perf_counter()
    process = subprocess.Popen([sys.executable, *argv])
    tree_peak = 0
    while True:
        pid, status, usage = os.wait4(process.pid, os.WNOHANG)
        if pid:
            break
        try:
            root = psutil.Process(process.pid)
            members = [root, *root.children(recursive=True)]
            tree_peak = max(tree_peak, sum(_rss(p) for p in members))
        except psutil.NoSuchProcess:
            pass
        time.sleep(0.2)
    seconds = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"stage failed: python {' '.join(argv)}")
    single = usage.ru_maxrss / 1024  # Linux reports KiB
    return {"seconds": seconds, "peak_rss_mib": max(tree_peak / 2**20, single), "max_process_rss_mib": single}


def _rss(process: Any) -> int:
    import psutil

    try:
        return process.memory_info().rss
    except psutil.NoSuchProcess:
        return 0


def folder_mib(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20 if path.exists() else 0.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", type=int, default=[100_000, 1_000_000], help="corpus sizes")
    parser.add_argument("--mining", nargs="*", type=int, default=[500_000], help="corpus sizes mined over")
    parser.add_argument("--data-dir", default=None, help="data root holding beir/scifact and beir/nfcorpus")
    parser.add_argument("--work", default="runs/bench/scale", help="corpora, models, caches and indexes")
    parser.add_argument("--json", default=None, help="also write the table as JSON here")
    parser.add_argument("--stage", default=None, help=argparse.SUPPRESS)  # a child's one stage
    parser.add_argument("--n", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    log_progress()
    work = Path(args.work)
    if args.stage:
        stage(args.stage, args.n, work)
        return 0
    pool = sentences(data_root(args.data_dir))
    dense, _ = build_models(pool, work)
    largest = max([*args.sizes, *args.mining])
    full = write_corpus(pool, largest, work / f"corpus-{largest}.jsonl")
    rows = []

    def record(name: str, n: int, figures: dict[str, float], out: Path | None = None) -> None:
        rows.append({"stage": name, "documents": n, "docs_per_second": n / figures["seconds"],
                     "on_disk_mib": folder_mib(out) if out else 0.0, **figures})  # fmt: skip

    me = ["-m", "bench.scale", "--work", str(work)]
    for n in sorted(set(args.sizes)):
        if n != largest:
            _prefix(full, n, work / f"corpus-{n}.jsonl")
        cache = work / "cache" / f"dense-{n}"
        record(
            "dense encode (embedding cache)",
            n,
            run_child([*me, "--stage", "dense-encode", "--n", str(n)]),
            cache,
        )
        for index in ("faiss:Flat", "milvus"):
            out = work / "index" / f"dense-{index.split(':')[0]}-{n}"
            argv = [
                "index",
                "--model",
                str(dense),
                "--corpus",
                str(work / f"corpus-{n}.jsonl"),
                "--output",
                str(out),
            ]
            figures = run_child(["-m", "retrieval", "-q", *argv, "--index", index, "--cache-dir", str(cache)])
            record(f"dense {index} from the cache (winnow index)", n, figures, out)
        record("sparse encode (CSR chunks)", n, run_child([*me, "--stage", "sparse-encode", "--n", str(n)]),
               work / "cache" / f"sparse-{n}")  # fmt: skip
        for name in ("sparse-inverted", "sparse-milvus"):
            figures = run_child([*me, "--stage", name, "--n", str(n)])
            record(f"{name.replace('-', ' ')} from the chunks", n, figures, work / "index" / f"{name}-{n}")
    for n in args.mining:
        corpus = full if n == largest else _prefix(full, n, work / f"corpus-{n}.jsonl")
        folder = write_training_set(corpus, work / f"mine-{n}")
        recipe = work / f"mine-{n}.yaml"
        recipe.write_text(
            f"model: {dense}\ncache_dir: {work / 'cache' / f'mine-{n}'}\n"
            f"data: {{dataset: {folder.resolve()}, split: train}}\nguide: null\nloss: {{name: mnrl}}\n"
            "mining: {model: student, num_negatives: 4, range_max: 30}\n"
            "training: {batch_size: 16, max_steps: 1, max_length: 128}\n"
        )
        out = work / f"mined-model-{n}"
        figures = run_child(["-m", "retrieval", "-q", "train", str(recipe), "--output", str(out)])
        record("mine 4 negatives for 1,000 queries (winnow train)", n, figures)
    print(f"# {command_line()}")
    print("| stage | documents | seconds | docs/s | peak RSS, process tree (MiB) | on disk (MiB) |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['stage']} | {r['documents']:,} | {r['seconds']:.0f} | {r['docs_per_second']:.0f} | "
              f"{r['peak_rss_mib']:.0f} | {r['on_disk_mib']:.1f} |")  # fmt: skip
    if args.json:
        save_record(args.json, rows=rows, cpus=os.cpu_count())
    return 0


def _prefix(full: Path, n: int, path: Path) -> Path:
    """The first ``n`` lines of ``full`` (the ``n``-document corpus), written once."""
    if not path.is_file():
        tmp = path.with_suffix(".tmp")
        with full.open(encoding="utf-8") as src, tmp.open("w", encoding="utf-8") as out:
            for _, line in zip(range(n), src, strict=False):
                out.write(line)
        tmp.replace(path)
    return path


if __name__ == "__main__":
    raise SystemExit(main())
