"""Build the model a method trains, and write what it produced.

Methods (each a small entry in METHODS): full (all weights, optionally the decoder only), lora,
dora (LoRA with weight decomposition), qlora8 / qlora4 (LoRA over an 8-bit LLM.int8 or NF4
double-quantised base from bitsandbytes; CPU and CUDA). Adapters target the linear layers named by
`target` (presets qv, attn, all-linear) in the encoder, decoder or both (`target_side`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from soritune.errors import ConfigError
from soritune.models.adapters import load_trainable_state  # noqa: F401 - re-exported (train.loop, run)
from soritune.train.config import TrainConfig


@dataclass
class BuiltModel:
    model: Any  # a PeftModel for adapter methods, else WhisperForConditionalGeneration
    processor: Any
    trainable_params: int
    total_params: int
    info: dict = field(default_factory=dict)


def target_regex(modules: tuple[str, ...], side: str) -> str:
    """A PEFT target_modules regex (full match) for `modules` in the chosen stack(s)."""
    stacks = {"encoder": "encoder", "decoder": "decoder", "both": "(?:encoder|decoder)"}[side]
    names = "|".join(sorted(set(modules)))
    return rf"(?:.*\.)?model\.{stacks}\.layers\.\d+\.(?:(?:self_attn|encoder_attn)\.)?(?:{names})"


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
    """Load config.model and make it trainable the way config.method says."""
    model, processor, info = _load_base(config, device, compute_dtype)
    if hasattr(model, "set_attn_implementation"):
        model.set_attn_implementation(config.attn_implementation)
    model.config.use_cache = False
    if config.gradient_checkpointing:
        if hasattr(model, "activation_checkpointing_enable"):  # transformers >= 5.x name
            model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
        else:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    if config.method == "full":
        for p in model.parameters():
            p.requires_grad_(True)
        model.model.encoder.embed_positions.requires_grad_(False)
        if config.freeze_encoder:
            model.model.encoder.requires_grad_(False)
    else:
        model = _add_adapter(model, config)
    model.train()
    trainable, total = count_params(model)
    info = {**info, "method": config.method, "quantization": config.quantization}
    return BuiltModel(model, processor, trainable, total, info)


def _add_adapter(model, config: TrainConfig):
    from peft import LoraConfig, get_peft_model

    for p in model.parameters():
        p.requires_grad_(False)
    regex = target_regex(config.target_modules(), config.target_side)
    import re

    matched = [n for n, _ in model.named_modules() if re.fullmatch(regex, n)]
    if not matched:
        raise ConfigError(f"target: no module of {config.model} matches {config.target!r} on side "
                          f"{config.target_side!r}")
    lora = LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout,
                      target_modules=regex, bias="none", use_dora=config.method == "dora")
    import warnings

    with warnings.catch_warnings():  # peft asks transformers a deprecated question; nothing for the user
        warnings.simplefilter("ignore", FutureWarning)
        peft_model = get_peft_model(model, lora)
    peft_model.peft_config["default"].base_model_name_or_path = config.model
    return peft_model


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
    from soritune.models.adapters import apply_adapter

    dest = run_dir / "merged"
    if not config.uses_adapter:
        loaded = load(str(weights_dir))
        model, processor = loaded.model, loaded.processor
    else:
        loaded = load(config.model, seed=config.seed)
        model = apply_adapter(loaded.model, weights_dir, merge=True)
        processor = loaded.processor
    model.save_pretrained(str(dest))
    processor.save_pretrained(str(dest))
    return dest
