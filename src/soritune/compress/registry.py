"""Prune methods by name: each is one small module with a typed config and run() (export targets:
`soritune.compress.export.TARGETS`).

    from soritune.compress.registry import prune
    result = prune("lottery", model="bundled:whisper-base", train="train.jsonl", sparsity=0.5, out="lth/")
"""

from __future__ import annotations

from importlib import import_module
from typing import Any, Callable

from soritune.errors import ConfigError

# name -> (module, config class); every module exposes run(config[, progress]) -> Result
PRUNE_METHODS: dict[str, tuple[str, str]] = {
    "magnitude": ("soritune.compress.prune_magnitude", "MagnitudeConfig"),
    "lottery": ("soritune.compress.prune_lottery", "LotteryConfig"),
    "structured": ("soritune.compress.prune_structured", "StructuredConfig"),
}


def prune_method(name: str) -> tuple[type, Callable]:
    """(config class, run function) of a prune method."""
    if name not in PRUNE_METHODS:
        raise ConfigError(f"method: {name!r}; allowed: {', '.join(PRUNE_METHODS)}")
    module_name, config_name = PRUNE_METHODS[name]
    module = import_module(module_name)
    return getattr(module, config_name), module.run


def prune(method: str, progress: Callable[[dict], None] | None = None, **fields: Any):
    """Validate `fields` against the method's config and run it."""
    from soritune.config import validate

    config_cls, run = prune_method(method)
    config = validate(config_cls, fields)
    return run(config, progress=progress) if method == "lottery" else run(config)
