"""Save the models the compress stage writes, and measure them (`soritune.models.load` reads them back).

- `save_model(model, processor, out)`: a plain Hugging Face directory (`hf:OUT` loads it), with
  the processor files beside the weights.
- sizes: parameter counts and on-disk bytes, measured, never estimated from a formula alone.
"""

from __future__ import annotations

import math
from pathlib import Path

WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


def save_model(model, processor, out: str | Path) -> Path:
    """Write `model` + processor as a Hugging Face directory; returns the directory."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out))
    processor.save_pretrained(str(out))
    return out


def clone_model(model):
    """A deep copy (weights included) of a Whisper model."""
    import copy

    return copy.deepcopy(model)


def param_count(model) -> int:
    return sum(p.numel() for p in model.parameters())


def dense_bytes(model) -> int:
    """Bytes of all parameters as stored densely (tied tensors once)."""
    seen, total = set(), 0
    for p in model.parameters():
        if p.data_ptr() in seen:
            continue
        seen.add(p.data_ptr())
        total += p.numel() * p.element_size()
    return total


def weights_file_bytes(directory: str | Path) -> int:
    """Bytes of the weight files in a saved directory (what a user downloads)."""
    directory = Path(directory)
    total = 0
    for name in WEIGHT_FILES:
        total += sum(f.stat().st_size for f in directory.glob(name.replace(".", "*.", 1)) if f.is_file())
    if total == 0:
        total = sum(f.stat().st_size for f in directory.glob("*.safetensors") if f.name != "masks.safetensors")
    return total


def dir_bytes(directory: str | Path) -> int:
    return sum(f.stat().st_size for f in Path(directory).rglob("*") if f.is_file())


def sparse_storage_bytes(nnz: int, numel: int, value_bytes: int = 4) -> int:
    """Bytes a CSR-like sparse format would need for one matrix: values + int32 column indices
    (row pointers ignored). Reported next to the dense size, never instead of a measured file."""
    if numel == 0:
        return 0
    return nnz * (value_bytes + 4)


def mb(n_bytes: int) -> float:
    """Bytes as MB (10^6 bytes, as every `*_mb` figure in soritune), 3 decimals."""
    return round(n_bytes / 1e6, 3)


def finite_or_none(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else x
