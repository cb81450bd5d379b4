"""8-bit / 4-bit bases through bitsandbytes (LLM.int8 and NF4 with double quantisation).

bitsandbytes >= 0.47 runs both on CPU as well as CUDA. Models without a directory on disk (tiny:,
random:) are saved to a temporary directory first, so one code path (from_pretrained) serves all.

4-bit: a linear layer whose rows are not whole quantisation blocks (in_features not a multiple of
the NF4 block, 64) or whose output is not a multiple of the CPU kernel's 32-row tile is kept in full
precision, with a logged message. bitsandbytes' packed CPU inference path (taken on CPUs with
AVX512-BF16) reshapes the per-block scales to (out_features, in_features / block) and fails on such
layers; keeping them unquantised on every CPU makes a model behave the same everywhere. Real Whisper
models (d_model >= 384) have no such layer; only small test models (`tiny:`, d_model 32) do.
"""

from __future__ import annotations

import logging
import re
import tempfile
from pathlib import Path
from typing import Literal

from soritune.errors import SoritunError

log = logging.getLogger(__name__)

Quantization = Literal["8bit", "4bit"]
# Kept in higher precision: the tied output projection / embeddings and the convolutional front end.
SKIP_MODULES = ["proj_out", "conv1", "conv2"]
NF4_BLOCKSIZE = 64  # bitsandbytes' default 4-bit block (values per absmax scale)
CPU_PACK_ROWS = 32  # bitsandbytes' packed CPU layout groups output rows in tiles of 32


def narrow_linear_names(model, blocksize: int = NF4_BLOCKSIZE) -> list[str]:
    """Names of nn.Linear layers a 4-bit quantisation keeps in full precision (see module doc)."""
    import torch

    return [
        name for name, module in model.named_modules()
        if isinstance(module, torch.nn.Linear)
        and (module.in_features % blocksize or module.out_features % CPU_PACK_ROWS)
    ]


def bnb_config(quantization: str, compute_dtype=None, extra_skip: list[str] | None = None):
    import torch
    from transformers import BitsAndBytesConfig

    try:
        import bitsandbytes  # noqa: F401
    except ImportError as e:
        raise SoritunError("quantization needs bitsandbytes: pip install 'soritune[quant]'") from e
    if quantization == "8bit":
        return BitsAndBytesConfig(load_in_8bit=True, llm_int8_skip_modules=SKIP_MODULES)
    if quantization == "4bit":
        skip = SKIP_MODULES + [re.escape(name) for name in extra_skip or []]
        return BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=compute_dtype or torch.float32, llm_int8_skip_modules=skip,
        )
    raise SoritunError(f"quantization must be '8bit' or '4bit', got {quantization!r}")


def _four_bit_keep(model, model_dir) -> list[str]:
    """Narrow layers of `model` (or of the model in `model_dir`, built on the meta device)."""
    if model is None:
        import torch
        from transformers import WhisperConfig, WhisperForConditionalGeneration

        with torch.device("meta"):
            model = WhisperForConditionalGeneration(WhisperConfig.from_pretrained(str(model_dir)))
    keep = [n for n in narrow_linear_names(model) if not any(n.endswith(s) for s in SKIP_MODULES)]
    if keep:
        log.warning(
            "4bit: keeping %d linear layer(s) in full precision: their input width is not a multiple of "
            "the %d-value NF4 block (or output not a multiple of %d), e.g. %s", len(keep), NF4_BLOCKSIZE,
            CPU_PACK_ROWS, keep[0],
        )
    return keep


def load_quantized(model_dir: str | Path | None, quantization: str, model=None, device: str = "cpu", compute_dtype=None):
    """Load WhisperForConditionalGeneration from `model_dir` (or an in-memory `model`) quantised."""
    from transformers import WhisperForConditionalGeneration

    keep = _four_bit_keep(model, model_dir) if quantization == "4bit" else []
    cfg = bnb_config(quantization, compute_dtype, extra_skip=keep)
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
    qmodel.soritune_full_precision_linears = keep
    return qmodel
