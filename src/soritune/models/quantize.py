"""8-bit / 4-bit bases through bitsandbytes (LLM.int8 and NF4 with double quantisation).

bitsandbytes >= 0.47 runs both on CPU as well as CUDA. Models without a directory on disk (tiny:,
random:) are saved to a temporary directory first, so one code path (from_pretrained) serves all.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Literal

from soritune.errors import SoritunError

Quantization = Literal["8bit", "4bit"]
# Kept in higher precision: the tied output projection / embeddings and the convolutional front end.
SKIP_MODULES = ["proj_out", "conv1", "conv2"]


def bnb_config(quantization: str, compute_dtype=None):
    import torch
    from transformers import BitsAndBytesConfig

    try:
        import bitsandbytes  # noqa: F401
    except ImportError as e:
        raise SoritunError("quantization needs bitsandbytes: pip install 'soritune[quant]'") from e
    if quantization == "8bit":
        return BitsAndBytesConfig(load_in_8bit=True, llm_int8_skip_modules=SKIP_MODULES)
    if quantization == "4bit":
        return BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=compute_dtype or torch.float32, llm_int8_skip_modules=SKIP_MODULES,
        )
    raise SoritunError(f"quantization must be '8bit' or '4bit', got {quantization!r}")


def load_quantized(model_dir: str | Path | None, quantization: str, model=None, device: str = "cpu", compute_dtype=None):
    """Load WhisperForConditionalGeneration from `model_dir` (or an in-memory `model`) quantised."""
    from transformers import WhisperForConditionalGeneration

    cfg = bnb_config(quantization, compute_dtype)
    tmp = None
    if model_dir is None:
        tmp = tempfile.TemporaryDirectory(prefix="soritune-q-")
        model.save_pretrained(tmp.name)
        model_dir = tmp.name
    try:
        qmodel = WhisperForConditionalGeneration.from_pretrained(
            str(model_dir), quantization_config=cfg, device_map={"": device},
        )
    finally:
        if tmp is not None:
            tmp.cleanup()
    if model is not None:
        qmodel.generation_config = model.generation_config
    return qmodel
