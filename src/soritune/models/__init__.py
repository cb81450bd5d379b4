"""One loader for every model spec: `load(spec, quantization=None) -> Loaded(model, processor)`.

Specs: bundled:whisper-base | hf:ID_OR_DIR (or a bare local directory) | ct2:DIR | tiny: |
random:ARCH. `model, processor = load("tiny:")` unpacks.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from soritune.errors import ModelSpecError
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


def _from_hf(name_or_dir: str, dtype=None):
    from transformers import WhisperForConditionalGeneration, WhisperProcessor

    try:
        model = WhisperForConditionalGeneration.from_pretrained(name_or_dir, dtype=dtype)
        processor = WhisperProcessor.from_pretrained(name_or_dir)
    except OSError as e:
        raise ModelSpecError(
            f"hf:{name_or_dir}: cannot load ({str(e).splitlines()[0]}); offline, only local directories "
            f"and models already in the Hugging Face cache load"
        ) from None
    model.eval()
    return model, processor


def load(spec: str, quantization: str | None = None, *, device: str = "cpu", dtype=None, seed: int = 0) -> Loaded:
    """Load a Whisper model + processor from a spec string.

    quantization: None | "8bit" | "4bit" (bitsandbytes; CPU and CUDA). dtype: a torch dtype for
    unquantised weights (default float32). seed: initialisation seed for tiny:/random: specs.
    """
    _quiet_transformers()
    parsed = parse_spec(spec)
    model = processor = None
    info: dict = {"spec": str(spec), "kind": parsed.kind}
    if parsed.kind in ("tiny", "random"):
        from soritune.models.architectures import tiny_test_config, whisper_config
        from soritune.models.tokenizer import build_processor

        config = tiny_test_config() if parsed.kind == "tiny" else whisper_config(parsed.arg)
        processor = build_processor(config.num_mel_bins)
        model = _finish(_random_model(config, seed), processor)
        src = None
    elif parsed.kind == "ct2":
        from soritune.models.ct2_import import load_ct2_as_hf

        model, processor = load_ct2_as_hf(parsed.arg)
        info["dequantized_matrices"] = len(getattr(model, "soritune_dequantized", []))
        src = None
    else:
        src = model_dir_for(parsed)
        model, processor = _from_hf(str(src) if src else parsed.arg)
    if quantization:
        from soritune.models.quantize import load_quantized

        model = load_quantized(src, quantization, model=model, device=device)
        info["quantization"] = quantization
    else:
        if dtype is not None:
            model = model.to(dtype)
        model = model.to(device)
    info["params"] = sum(p.numel() for p in model.parameters())
    return Loaded(model=model, processor=processor, spec=str(spec), source_dir=src, info=info)
