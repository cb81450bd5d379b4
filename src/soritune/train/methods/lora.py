"""LoRA-family adapters through PEFT: lora, dora (weight-decomposed LoRA), and the shared builder
(`add_lora`) that other LoRA variants call with their own LoraConfig switches (see rslora.py)."""

from __future__ import annotations

import re
import warnings

from soritune.errors import ConfigError


def target_regex(modules: tuple[str, ...], side: str) -> str:
    """A PEFT target_modules regex (full match) for `modules` in the chosen stack(s)."""
    stacks = {"encoder": "encoder", "decoder": "decoder", "both": "(?:encoder|decoder)"}[side]
    names = "|".join(sorted(set(modules)))
    return rf"(?:.*\.)?model\.{stacks}\.layers\.\d+\.(?:(?:self_attn|encoder_attn)\.)?(?:{names})"


def add_lora(model, config, **lora_switches):
    """Freeze `model` and wrap it with a LoRA adapter on config.target / config.target_side."""
    from peft import LoraConfig, get_peft_model

    for p in model.parameters():
        p.requires_grad_(False)
    regex = target_regex(config.target_modules(), config.target_side)
    if not any(re.fullmatch(regex, n) for n, _ in model.named_modules()):
        raise ConfigError(f"target: no module of {config.model} matches {config.target!r} on side "
                          f"{config.target_side!r}")
    lora = LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout,
                      target_modules=regex, bias="none", **lora_switches)
    with warnings.catch_warnings():  # peft asks transformers a deprecated question; nothing for the user
        warnings.simplefilter("ignore", FutureWarning)
        peft_model = get_peft_model(model, lora)
    peft_model.peft_config["default"].base_model_name_or_path = config.model
    return peft_model


def build_lora(model, config):
    return add_lora(model, config)


def build_dora(model, config):
    return add_lora(model, config, use_dora=True)
