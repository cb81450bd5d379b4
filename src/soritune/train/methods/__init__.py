"""Training methods by name: ADAPTERS maps `TrainConfig.adapter` to the function that makes a loaded
model trainable (`build(model, config) -> model`). Quantisation of the base (`TrainConfig.quantization`)
is a separate axis, applied when the base loads, so any adapter runs on an 8-bit or 4-bit base.

Adding a method is one module here plus one line below; the CLI, the config's allowed values and
`soritune bench train` read this table.
"""

from __future__ import annotations

from soritune.train.methods import full, lora, rslora

ADAPTERS = {
    "full": full.build,
    "lora": lora.build_lora,
    "dora": lora.build_dora,
    "rslora": rslora.build,
}

# Preset aliases of (adapter, quantization): what `method=` means (the demo and users say method="qlora4").
METHOD_PRESETS = {
    "full": ("full", None),
    "lora": ("lora", None),
    "qlora8": ("lora", "8bit"),
    "qlora4": ("lora", "4bit"),
    "dora": ("dora", None),
}


def preset_for(adapter: str, quantization: str | None) -> str | None:
    """The preset name of an (adapter, quantization) pair, or None when no preset names it."""
    return next((m for m, pair in METHOD_PRESETS.items() if pair == (adapter, quantization)), None)
