"""Apply a PEFT adapter directory (LoRA / DoRA) to a loaded model."""

from __future__ import annotations

from pathlib import Path

from soritune.errors import ConfigError, SoritunError


def apply_adapter(model, adapter_dir: str | Path, merge: bool = True, state: dict | None = None):
    """Load a PEFT adapter onto `model`; merge it into the weights unless the base is quantised.

    The one merge path of soritune (`models.load(spec, adapter)` calls it). state: adapter tensors
    (name -> tensor, e.g. a checkpoint's) loaded over the saved ones before the merge."""
    adapter_dir = Path(adapter_dir)
    if not (adapter_dir / "adapter_config.json").exists():
        raise SoritunError(f"--adapter {adapter_dir}: no adapter_config.json there (expected a PEFT adapter directory)")
    from peft import PeftModel

    peft_model = PeftModel.from_pretrained(model, str(adapter_dir))
    peft_model.eval()
    if state is not None:
        load_trainable_state(peft_model, state)
    quantised = getattr(model, "is_loaded_in_8bit", False) or getattr(model, "is_loaded_in_4bit", False)
    if merge and not quantised:
        return peft_model.merge_and_unload()
    return peft_model


def load_trainable_state(model, state: dict) -> None:
    """Copy `state` (name -> tensor) into the parameters of `model` of the same names."""
    import torch

    params = dict(model.named_parameters())
    missing = [n for n in state if n not in params]
    if missing:
        raise ConfigError(f"checkpoint does not fit this model: {len(missing)} unknown tensors (e.g. {missing[0]})")
    with torch.no_grad():
        for n, t in state.items():
            params[n].copy_(t.to(params[n].device, params[n].dtype))
