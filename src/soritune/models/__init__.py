"""One loader for every model spec: `load(spec, adapter=None) -> Loaded(model, processor)`.

Specs: bundled:whisper-base | hf:ID_OR_DIR (or a bare local directory, in any format of
`soritune.models.formats`) | ct2:DIR | tiny: | random:ARCH. `model, processor = load("tiny:")` unpacks.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from soritune.errors import ModelSpecError
from soritune.models import formats
from soritune.models.specs import ACCEPTED, ARCHS, ModelSpec, parse_spec

__all__ = ["load", "Loaded", "parse_spec", "ModelSpec", "ACCEPTED", "ARCHS", "model_dir_for"]
log = logging.getLogger(__name__)


@dataclass
class Loaded:
    """A loaded model and its processor; unpacks as (model, processor)."""

    model: Any
    processor: Any
    spec: str
    source_dir: Path | None = None  # a Hugging Face directory holding these weights, if any
    info: dict = field(default_factory=dict)
    adapter: str | None = None  # the PEFT adapter merged in (kept unmerged on a quantised base)
    masks: dict | None = None  # pruning masks stored with the directory (re-applied after the merge)

    def __iter__(self) -> Iterator[Any]:
        return iter((self.model, self.processor))


def _quiet_transformers() -> None:
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()


def _random_model(config, seed: int):
    import torch
    from transformers import WhisperForConditionalGeneration

    torch.manual_seed(seed)
    model = WhisperForConditionalGeneration(config)
    model.eval()
    return model


def _finish(model, processor):
    from soritune.models.tokenizer import build_generation_config

    model.generation_config = build_generation_config(processor.tokenizer, model.config)
    return model


def model_dir_for(spec: ModelSpec) -> Path | None:
    """The Hugging Face directory behind a spec, when there is one on disk."""
    if spec.kind == "bundled":
        from soritune.models import bundled

        return bundled.hf_dir()
    if spec.kind == "hf" and Path(spec.arg).is_dir():
        return Path(spec.arg)
    return None


def _from_hf(name_or_dir: str):
    from soritune.models.formats import load_hf

    return load_hf(name_or_dir)


def load(spec: str, adapter: str | Path | None = None, *, quantization: str | None = None, device: str = "cpu",
         dtype=None, seed: int = 0) -> Loaded:
    """Load a Whisper model + processor from a spec string, with a PEFT adapter merged in.

    A directory may be any format soritune writes (`soritune.models.formats.FORMATS`: HF, CTranslate2,
    head-pruned, torch-int8, a PEFT adapter, a train/lottery/distill run dir). Pruning masks stored
    with it are re-applied after the adapter merge. quantization: None | "8bit" | "4bit"
    (bitsandbytes; CPU and CUDA; the adapter is then kept unmerged). dtype: a torch dtype for
    unquantised weights (default float32). seed: initialisation seed for tiny:/random: specs.
    """
    _quiet_transformers()
    parsed = parse_spec(spec)
    info: dict = {"spec": str(spec), "kind": parsed.kind}
    src = masks = None
    if parsed.kind in ("tiny", "random"):
        from soritune.models.architectures import tiny_test_config, whisper_config
        from soritune.models.tokenizer import build_processor

        config = tiny_test_config() if parsed.kind == "tiny" else whisper_config(parsed.arg)
        processor = build_processor(config.num_mel_bins)
        model = _finish(_random_model(config, seed), processor)
    elif parsed.kind == "ct2":
        model, processor = formats.load_ct2(Path(parsed.arg))
        info["format"] = "ct2"
    elif (directory := model_dir_for(parsed)) is not None:
        fmt = formats.detect(directory)
        got = fmt.load(directory)
        if isinstance(got, formats.Redirect):
            if adapter and got.adapter:
                raise ModelSpecError(f"{spec}: holds an adapter already ({got.adapter}); pass its base as the model "
                                     f"to merge another one")
            inner = load(got.spec, adapter or got.adapter, quantization=quantization, device=device, dtype=dtype,
                         seed=seed if got.seed is None else got.seed)
            inner.spec = str(spec)
            inner.info = {**inner.info, "spec": str(spec), "via": f"{fmt.name}:{got.spec}"}
            return inner
        if adapter and not fmt.takes_adapter:
            raise ModelSpecError(f"{spec}: a {fmt.name} directory cannot take an adapter (merge before exporting)")
        if quantization and not fmt.quantizable:
            raise ModelSpecError(f"{spec}: a {fmt.name} directory cannot be loaded {quantization} (bitsandbytes "
                                 f"re-loads standard Hugging Face directories only)")
        model, processor = got
        info["format"] = fmt.name
        src = directory if fmt.quantizable else None
        masks = formats.load_masks(directory)
    else:
        model, processor = _from_hf(parsed.arg)
    if "dequantized_matrices" not in info and hasattr(model, "soritune_dequantized"):
        info["dequantized_matrices"] = len(model.soritune_dequantized)
    if quantization:
        from soritune.models.quantize import load_quantized

        model = load_quantized(src, quantization, model=model, device=device)
        info["quantization"] = quantization
    else:
        if dtype is not None:
            model = model.to(dtype)
        model = model.to(device)
    if adapter:
        from soritune.models.adapters import apply_adapter

        model = apply_adapter(model, adapter, merge=True)
        info["adapter"] = str(adapter)
    if masks and adapter:
        formats.apply_masks(model, masks)  # an adapter merged into pruned weights must not revive them
    model.eval()
    info["params"] = sum(p.numel() for p in model.parameters())
    return Loaded(model=model, processor=processor, spec=str(spec), source_dir=src, info=info,
                  adapter=str(adapter) if adapter else None, masks=masks)
