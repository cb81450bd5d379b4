"""Build the model a training run trains, and write what it produced.

The base loads quantised or not (`quantization`: 8bit LLM.int8 / 4bit NF4 from bitsandbytes; CPU and
CUDA), then `soritune.train.methods.ADAPTERS[adapter]` makes it trainable: full (all weights,
optionally the decoder only), lora, dora, ... Adapters target the linear layers named by `target`
(presets qv, attn, all-linear) in the encoder, decoder or both (`target_side`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from soritune.models.adapters import load_trainable_state  # noqa: F401 - re-exported (train.loop, run)
from soritune.train.config import TrainConfig
from soritune.train.methods import ADAPTERS
from soritune.train.methods.lora import target_regex  # noqa: F401 - re-exported (compress.prune_lottery)


@dataclass
class BuiltModel:
    model: Any  # a PeftModel for adapter methods, else WhisperForConditionalGeneration
    processor: Any
    trainable_params: int
    total_params: int
    info: dict = field(default_factory=dict)


def count_params(model) -> tuple[int, int]:
    """(trainable, total); NF4-packed weights count their logical size."""
    trainable = total = 0
    for p in model.parameters():
        qs = getattr(p, "quant_state", None)
        n = math.prod(qs.shape) if qs is not None and getattr(qs, "shape", None) is not None else p.numel()
        total += n
        trainable += n if p.requires_grad else 0
    return trainable, total


def _load_base(config: TrainConfig, device: str, compute_dtype=None):
    from soritune.models import load

    loaded = load(config.model, seed=config.seed)
    if config.quantization:
        from soritune.models.quantize import load_quantized

        model = load_quantized(loaded.source_dir, config.quantization, model=loaded.model, device=device,
                               compute_dtype=compute_dtype)
    else:
        model = loaded.model.to(device)
    return model, loaded.processor, loaded.info


def build_model(config: TrainConfig, device: str = "cpu", compute_dtype=None) -> BuiltModel:
    """Load config.model (quantised as config.quantization says) and make it trainable with ADAPTERS[config.adapter]."""
    model, processor, info = _load_base(config, device, compute_dtype)
    if hasattr(model, "set_attn_implementation"):
        model.set_attn_implementation(config.attn_implementation)
    model.config.use_cache = False
    if config.gradient_checkpointing:
        if hasattr(model, "activation_checkpointing_enable"):  # transformers >= 5.x name
            model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
        else:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model = ADAPTERS[config.adapter](model, config)
    model.train()
    trainable, total = count_params(model)
    info = {**info, "method": config.method, "adapter": config.adapter, "quantization": config.quantization}
    return BuiltModel(model, processor, trainable, total, info)


# ---- trainable state (checkpoints) -----------------------------------------------------------

def trainable_state(model) -> dict:
    """Detached CPU copies of the trainable parameters, by name."""
    return {n: p.detach().to("cpu").clone() for n, p in model.named_parameters() if p.requires_grad}


# ---- outputs ---------------------------------------------------------------------------------

def export(model, processor, run_dir: Path, config: TrainConfig) -> Path:
    """RUN_DIR/adapter/ (PEFT format) for adapter methods, RUN_DIR/model/ (HF format) for full."""
    if config.uses_adapter:
        dest = run_dir / "adapter"
        model.save_pretrained(str(dest), save_embedding_layers=False)  # embeddings are never adapted here
        return dest
    dest = run_dir / "model"
    model.save_pretrained(str(dest))
    processor.save_pretrained(str(dest))
    return dest


def export_merged(config: TrainConfig, weights_dir: Path, run_dir: Path) -> Path:
    """RUN_DIR/merged/: the unquantised base with the adapter merged in (HF format, loads as hf:DIR)."""
    from soritune.models import load

    dest = run_dir / "merged"
    if config.uses_adapter:
        loaded = load(config.model, weights_dir, seed=config.seed)
    else:
        loaded = load(str(weights_dir))
    loaded.model.save_pretrained(str(dest))
    loaded.processor.save_pretrained(str(dest))
    return dest
