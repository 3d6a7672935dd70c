"""The recipe's data-set names as paths under the data root (``winnow train --data-dir``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def resolve_datasets(config: Any, data_root: Path, where: str = "config") -> Any:
    """Turn the names in a :class:`~trainers.config.TrainConfig` into paths under ``data_root`` (in
    place; returns ``config``).

    ``data.dataset`` may also be a JSONL file or a saved Hugging Face dataset: an existing path is kept
    as it is. A name that is neither raises FileNotFoundError naming the key.
    """
    from retrieval.settings import resolve_beir

    def resolve(key: str, value: str) -> str:
        try:
            return str(resolve_beir(value, data_root))
        except FileNotFoundError as exc:
            raise FileNotFoundError(f"{where}: {key}: {exc}") from exc

    config.data.dataset = resolve("data.dataset", config.data.dataset)
    config.data.extra_datasets = [
        resolve(f"data.extra_datasets[{i}]", name) for i, name in enumerate(config.data.extra_datasets)
    ]
    config.sparse.idf_corpora = [
        resolve(f"sparse.idf_corpora[{i}]", name) for i, name in enumerate(config.sparse.idf_corpora)
    ]
    return config
