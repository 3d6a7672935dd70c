"""What the pooling modules share: masked means, last-token states and safetensors-only loading."""

from __future__ import annotations

from typing import Any

from sentence_transformers.base.modules import Module
from torch import Tensor

WEIGHTS_FILE = "model.safetensors"


def masked_mean(states: Tensor, attention_mask: Tensor) -> Tensor:
    """Mean over the real tokens of ``states`` (batch, tokens, dim); padding has no weight."""
    mask = attention_mask.unsqueeze(-1).to(states.dtype)
    return (states * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)


def pooling_mask(features: dict[str, Any], include_prompt: bool) -> Tensor:
    """The attention mask, with the tokens of the model's prompt (an instruction prefix) zeroed when
    ``include_prompt`` is False and sentence-transformers passes their count (``prompt_length``);
    under left padding the prompt starts at each row's first real token."""
    import torch

    mask = features["attention_mask"]
    length = features.get("prompt_length")
    if include_prompt or length is None:
        return mask
    length = int(length.reshape(-1)[0]) if isinstance(length, Tensor) else int(length)
    first = mask.to(torch.int32).argmax(dim=1, keepdim=True)  # 0 without left padding
    positions = torch.arange(mask.shape[1], device=mask.device).unsqueeze(0)
    return mask * ((positions < first) | (positions >= first + length)).to(mask.dtype)


def last_token(states: Tensor, attention_mask: Tensor) -> Tensor:
    """The state of each text's last real token (its EOS when one is appended), under left or right
    padding alike: the position of the last 1 in the mask."""
    positions = attention_mask * _arange(attention_mask)
    index = positions.argmax(dim=1)
    return states[_arange(index).squeeze(0), index]


def _arange(like: Tensor) -> Tensor:
    import torch

    return torch.arange(like.shape[-1], device=like.device).unsqueeze(0)


def hub_kwargs(kwargs: dict[str, Any]) -> dict[str, Any]:
    """The Hugging Face hub arguments among the ``kwargs`` sentence-transformers gives a module's ``load``."""
    keys = ("token", "cache_folder", "revision", "local_files_only")
    return {key: kwargs[key] for key in keys if key in kwargs}


def load_module(cls: type, model_name_or_path: str, subfolder: str = "", **kwargs: Any) -> Any:
    """Build ``cls`` from its saved ``config.json`` and load its ``model.safetensors`` (never a pickle).

    Raises:
        FileNotFoundError: the module folder has no ``model.safetensors``.
    """
    from safetensors.torch import load_model

    hub = hub_kwargs(kwargs)
    config = cls.load_config(model_name_or_path, subfolder=subfolder, **hub)
    module = cls(**config)
    path = cls.load_file_path(model_name_or_path, filename=WEIGHTS_FILE, subfolder=subfolder, **hub)
    if path is None:
        where = f"{model_name_or_path}/{subfolder}".rstrip("/")
        raise FileNotFoundError(f"{where}: {WEIGHTS_FILE} not found (the {cls.__name__} weights)")
    load_model(module, path)
    return module


def attention_block(dim: int, heads: int, mlp_ratio: float, owner: str) -> tuple[Any, Any, Any]:
    """The cross-attention (``heads`` heads), the pre-MLP LayerNorm and the MLP (two linear layers with
    GELU, hidden width ``mlp_ratio * dim``) that both trainable poolings use.

    Raises:
        ValueError: ``heads`` does not divide ``dim`` (``owner`` names the module).
    """
    from torch import nn

    if heads < 1 or dim % heads:
        raise ValueError(f"{owner}: heads={heads} must divide the hidden size {dim}")
    hidden = max(1, round(dim * mlp_ratio))
    attention = nn.MultiheadAttention(dim, heads, batch_first=True)
    mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))
    return attention, nn.LayerNorm(dim), mlp


class SavedPooling(Module):
    """Base of Winnow's pooling modules: ``config.json`` holds the ``config_keys`` and
    ``model.safetensors`` the weights; ``embedding_dimension`` is the output width."""

    embedding_dimension: int

    def get_embedding_dimension(self) -> int:
        return self.embedding_dimension

    def save(self, output_path: str, *args: Any, safe_serialization: bool = True, **kwargs: Any) -> None:
        self.save_config(output_path)
        self.save_torch_weights(output_path, safe_serialization=True)

    @classmethod
    def load(cls, model_name_or_path: str, subfolder: str = "", **kwargs: Any) -> Any:
        return load_module(cls, model_name_or_path, subfolder, **kwargs)
