"""Load and save the models the compress stage works on.

- `load_model(spec, adapter)`: any model spec, or a directory written by this package (a
  head-pruned model carries `structure.json` and is rebuilt before its weights load), with a PEFT
  adapter merged in and the pruning masks of the directory (if any) re-applied after the merge.
- `save_model(model, processor, out)`: a plain Hugging Face directory (`hf:OUT` loads it), with
  the processor files beside the weights.
- sizes: parameter counts and on-disk bytes, measured, never estimated from a formula alone.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from soritune.errors import CompressError

STRUCTURE_FILE = "structure.json"
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


@dataclass
class ModelBundle:
    """A loaded Whisper model with its processor, where it came from, and its pruning masks."""

    model: Any
    processor: Any
    spec: str
    adapter: str | None = None
    masks: dict | None = None  # name -> bool keep-mask, when the source directory had masks
    info: dict = field(default_factory=dict)


def local_dir(spec: str) -> Path | None:
    """The directory behind `hf:DIR` or a bare directory spec, else None."""
    s = spec.removeprefix("hf:")
    p = Path(s)
    return p if p.is_dir() else None


def load_model(spec: str, adapter: str | Path | None = None, *, seed: int = 0) -> ModelBundle:
    """Load `spec` (+ merged adapter). Masks stored with the model are re-applied after the merge."""
    from soritune.compress.masks import apply_masks, load_masks

    directory = local_dir(spec)
    if directory is not None and (directory / STRUCTURE_FILE).exists():
        from soritune.compress.prune_structured import load_structured

        model, processor = load_structured(directory)
        info = {"spec": spec, "kind": "structured"}
    elif directory is not None and (directory / "int8_model.pt").exists():
        from soritune.compress.export import load_int8

        if adapter:
            raise CompressError(f"{spec}: a torch-int8 export cannot take an adapter (merge before exporting)")
        model, processor = load_int8(directory)
        info = {"spec": spec, "kind": "torch-int8"}
    else:
        from soritune.models import load

        loaded = load(spec, seed=seed)
        model, processor, info = loaded.model, loaded.processor, dict(loaded.info)
    if adapter:
        from soritune.models.adapters import apply_adapter

        model = apply_adapter(model, adapter, merge=True)
    masks = load_masks(directory) if directory is not None else None
    if masks:
        apply_masks(model, masks)  # an adapter merged into pruned weights must not revive them
    model.eval()
    return ModelBundle(model, processor, spec, str(adapter) if adapter else None, masks, info)


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


def read_structure(directory: str | Path) -> dict | None:
    path = Path(directory) / STRUCTURE_FILE
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


def finite_or_none(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else x
