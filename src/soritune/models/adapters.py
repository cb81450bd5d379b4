"""Apply a PEFT adapter directory (LoRA / DoRA) to a loaded model."""

from __future__ import annotations

from pathlib import Path

from soritune.errors import SoritunError


def apply_adapter(model, adapter_dir: str | Path, merge: bool = True):
    """Load a PEFT adapter onto `model`; merge it into the weights unless the base is quantised."""
    adapter_dir = Path(adapter_dir)
    if not (adapter_dir / "adapter_config.json").exists():
        raise SoritunError(f"--adapter {adapter_dir}: no adapter_config.json there (expected a PEFT adapter directory)")
    from peft import PeftModel

    peft_model = PeftModel.from_pretrained(model, str(adapter_dir))
    peft_model.eval()
    quantised = getattr(model, "is_loaded_in_8bit", False) or getattr(model, "is_loaded_in_4bit", False)
    if merge and not quantised:
        return peft_model.merge_and_unload()
    return peft_model
