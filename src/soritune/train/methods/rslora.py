"""rsLoRA (Kalajdzievski 2023, "A Rank Stabilization Scaling Factor for Fine-Tuning with LoRA"): LoRA
scaled by alpha / sqrt(r) instead of alpha / r, so higher ranks keep learning instead of stalling.
PEFT implements it (`LoraConfig(use_rslora=True)`); adapters save, load and merge as plain LoRA."""

from __future__ import annotations

from soritune.train.methods.lora import add_lora


def build(model, config):
    return add_lora(model, config, use_rslora=True)
