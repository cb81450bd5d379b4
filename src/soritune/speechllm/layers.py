"""Removing decoder layers from a causal LM, for good or for one forward pass: the primitives of the
speech LLM's layer dropping (`soritune.speechllm.compress`) and of loading a dropped model
(`SpeechLLMConfig.llm_drop_layers`, re-applied by `soritune.speechllm.model`)."""

from __future__ import annotations

from contextlib import contextmanager

from soritune.errors import SoritunError


def decoder_of(llm):
    """The LLM's decoder stack (the module holding `layers`), through a peft wrapper too."""
    decoder = llm.get_decoder()
    if not hasattr(decoder, "layers"):
        raise SoritunError(f"{type(decoder).__name__}: no decoder `layers` to drop from")
    return decoder


def _text_config(llm):
    config = llm.config
    return getattr(config, "text_config", None) or config


def _keep_layers(llm, keep: list[int]) -> tuple:
    """Make the decoder run only `keep` (indices into the current stack); returns what restores it."""
    import torch

    decoder, config = decoder_of(llm), _text_config(llm)
    saved = (decoder.layers, config.num_hidden_layers, getattr(config, "layer_types", None))
    decoder.layers = torch.nn.ModuleList([saved[0][i] for i in keep])
    config.num_hidden_layers = len(keep)
    if saved[2] is not None:
        config.layer_types = [saved[2][i] for i in keep]
    return saved


def _restore_layers(llm, saved: tuple) -> None:
    decoder, config = decoder_of(llm), _text_config(llm)
    decoder.layers, config.num_hidden_layers = saved[0], saved[1]
    if saved[2] is not None:
        config.layer_types = saved[2]


def drop_layers(llm, drop: list[int]) -> list[int]:
    """Remove decoder layers `drop` (indices of the current stack) for good; returns the kept indices.
    Each kept attention's cache index is renumbered so KV-cached generation stays right."""
    n = len(decoder_of(llm).layers)
    bad = [i for i in drop if not 0 <= i < n]
    if bad:
        raise SoritunError(f"llm_drop_layers: {bad} out of range; the LLM has {n} decoder layers (0..{n - 1})")
    if len(set(drop)) >= n:
        raise SoritunError(f"llm_drop_layers: dropping {len(set(drop))} of {n} layers leaves none")
    keep = [i for i in range(n) if i not in set(drop)]
    _keep_layers(llm, keep)
    for new, layer in enumerate(decoder_of(llm).layers):
        for mod in layer.modules():
            if hasattr(mod, "layer_idx"):
                mod.layer_idx = new
    return keep


@contextmanager
def skipped(llm, layer: int):
    """The decoder without `layer`, for a forward pass without the KV cache; restored after."""
    n = len(decoder_of(llm).layers)
    saved = _keep_layers(llm, [i for i in range(n) if i != layer])
    try:
        yield
    finally:
        _restore_layers(llm, saved)
