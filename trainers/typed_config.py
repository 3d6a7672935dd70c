"""Typed dataclasses from plain mappings (parsed YAML), with errors that name the bad key or value.

``from_dict(cls, mapping)`` checks every value against ``cls``'s type hints (``int``, ``float``,
``str``, ``bool``, ``Literal``, ``list``, optionals, nested dataclasses) and rejects unknown keys with
the closest valid name; ``trainers.config`` builds the training recipe with it. A ``float`` must be
finite (``.nan`` and ``.inf`` are refused with the key); ranges are ``trainers.config_checks.RANGES``.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import types
import typing
from pathlib import Path
from typing import Any, Literal


class ConfigError(ValueError):
    """A config file or value is invalid; the message names the file, key and valid choices."""


def _suggest(key: str, valid: list[str]) -> str:
    close = difflib.get_close_matches(key, valid, n=1)
    return f"; did you mean {close[0]!r}?" if close else f"; valid keys: {', '.join(valid)}"


def _float(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)  # YAML reads 2e-5 as a string
        except ValueError:
            return None
    return None


def _convert(value: Any, hint: Any, path: str, where: str) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        non_none = [a for a in args if a is not type(None)]
        errors = []
        for candidate in non_none:
            try:
                return _convert(value, candidate, path, where)
            except ConfigError as exc:
                # a mapping was meant for the section, not the scalar: report the section's error
                if isinstance(value, dict) and dataclasses.is_dataclass(candidate):
                    errors.insert(0, str(exc))
                else:
                    errors.append(str(exc))
        raise ConfigError(errors[0])
    if origin is Literal:
        if value not in args:
            raise ConfigError(
                f"{where}: {path}={value!r} is not valid; expected one of {', '.join(map(repr, args))}"
            )
        return value
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"{where}: {path} must be a list, got {type(value).__name__}")
        return [_convert(v, args[0], f"{path}[{i}]", where) for i, v in enumerate(value)]
    if dataclasses.is_dataclass(hint):
        return from_dict(hint, value, where, path)
    if hint is float:
        number = _float(value)
        if number is not None:
            if not math.isfinite(number):
                raise ConfigError(f"{where}: {path}={value!r} must be a finite number")
            return number
    if hint in (int, str, bool) and isinstance(value, hint) and not (hint is int and isinstance(value, bool)):
        return value
    if hint is Any:
        return value
    raise ConfigError(f"{where}: {path}={value!r} must be of type {getattr(hint, '__name__', hint)}")


def from_dict(cls: type, raw: Any, where: str = "config", prefix: str = "") -> Any:
    """Build dataclass ``cls`` from a mapping, rejecting unknown keys with a suggestion."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: {prefix or 'top level'} must be a mapping, got {type(raw).__name__}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs = {}
    for key, value in raw.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        if key not in names:
            raise ConfigError(f"{where}: unknown key {path!r}{_suggest(str(key), names)}")
        kwargs[key] = _convert(value, hints[key], path, where)
    return cls(**kwargs)


def read_yaml(path: Path, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """A YAML file as a plain mapping, with ``overrides`` (dotted keys such as ``training.max_steps``)
    set in it; a missing file or bad YAML is an error that names the file and line. A ``model`` given
    as a bare name becomes ``{"name": ...}`` when an override reaches inside it (``model.pooling.type``)."""
    import yaml

    if not path.is_file():
        raise FileNotFoundError(f"config file {path} not found")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark else ""
        raise ConfigError(f"{path}{line}: invalid YAML: {getattr(exc, 'problem', exc)}") from exc
    for dotted, value in (overrides or {}).items():
        node = raw
        *parents, leaf = dotted.split(".")
        for part in parents:
            if part == "model" and isinstance(node.get(part), str):
                node[part] = {"name": node[part]}
            node = node.setdefault(part, {})
        node[leaf] = value
    return raw
