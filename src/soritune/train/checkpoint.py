"""Checkpoints for exact resume, and their retention.

RUN_DIR/checkpoints/step-000120/
    trainable.safetensors  the trainable tensors (adapter, or all weights for full FT), exact
    optimizer.pt, scheduler.pt, scaler.pt (fp16 only)
    rng-<rank>.pt          python / numpy / torch (/ CUDA) generator states of each process
    state.json             step, data position, best dev CER, early-stopping count, ... (written last)
A checkpoint is written into a hidden temporary directory and renamed when complete, so a process
killed while saving leaves the previous checkpoints intact; only directories with state.json count.
Retention keeps the newest `keep_last` and the best by dev CER.

Every `.pt` is read with `torch.load(weights_only=True)`: tensors and plain containers only, so a
run directory from elsewhere cannot execute code on resume. The numpy generator state is stored as
a tensor for that reason (older checkpoints, which pickled the numpy array, load through an
allow-list of exactly numpy's array reconstruction).
"""

from __future__ import annotations

import random
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from soritune.jsonio import read_json, write_json

CKPT_DIR = "checkpoints"
_NAME = re.compile(r"^step-(\d+)$")


def checkpoint_name(step: int) -> str:
    return f"step-{step:06d}"


def list_checkpoints(run_dir: str | Path) -> list[tuple[int, Path]]:
    """Complete checkpoints, oldest first."""
    root = Path(run_dir) / CKPT_DIR
    if not root.is_dir():
        return []
    found = []
    for d in root.iterdir():
        m = _NAME.match(d.name)
        if m and (d / "state.json").exists():
            found.append((int(m.group(1)), d))
    return sorted(found)


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    ckpts = list_checkpoints(run_dir)
    return ckpts[-1][1] if ckpts else None


def rng_state() -> dict[str, Any]:
    import torch

    name, keys, pos, has_gauss, cached = np.random.get_state()
    numpy_state = (name, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(cached))
    state = {"python": random.getstate(), "numpy": numpy_state, "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    import torch

    random.setstate(state["python"])
    name, keys, *rest = state["numpy"]
    keys = keys.numpy() if isinstance(keys, torch.Tensor) else np.asarray(keys)
    np.random.set_state((name, keys.astype(np.uint32), *rest))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def load_pt(path: Path):
    """torch.load restricted to tensors and plain containers (see the module doc)."""
    import torch

    allowed = [np.ndarray, np.dtype, type(np.dtype(np.uint32)), _numpy_reconstruct()]
    with torch.serialization.safe_globals(allowed):
        return torch.load(path, map_location="cpu", weights_only=True)


def _numpy_reconstruct():
    try:
        from numpy._core.multiarray import _reconstruct
    except ImportError:  # numpy < 2
        from numpy.core.multiarray import _reconstruct
    return _reconstruct


def save_checkpoint(accelerator, run_dir: Path, step: int, *, trainable: dict, optimizer, scheduler,
                    state: dict, scaler=None) -> Path:
    """Collective: every process calls it (each saves its RNG); the main process writes the rest."""
    import torch
    from safetensors.torch import save_file

    root = Path(run_dir) / CKPT_DIR
    final = root / checkpoint_name(step)
    tmp = root / f".{checkpoint_name(step)}.tmp"
    if accelerator.is_main_process:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    accelerator.wait_for_everyone()
    torch.save(rng_state(), tmp / f"rng-{accelerator.process_index}.pt")
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        save_file({k: v.contiguous() for k, v in trainable.items()}, str(tmp / "trainable.safetensors"))
        torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
        torch.save(scheduler.state_dict(), tmp / "scheduler.pt")
        if scaler is not None:
            torch.save(scaler.state_dict(), tmp / "scaler.pt")
        write_json(tmp / "state.json", {**state, "step": step, "world_size": accelerator.num_processes})
        shutil.rmtree(final, ignore_errors=True)
        tmp.rename(final)
    accelerator.wait_for_everyone()
    return final


def load_checkpoint(path: Path, accelerator, *, optimizer, scheduler, scaler=None) -> tuple[dict, dict]:
    """Restore optimizer, scheduler, scaler and this process's RNG; return (trainable, state)."""
    from safetensors.torch import load_file

    state = read_json(path / "state.json")
    trainable = load_file(str(path / "trainable.safetensors"))
    optimizer.load_state_dict(load_pt(path / "optimizer.pt"))
    scheduler.load_state_dict(load_pt(path / "scheduler.pt"))
    if scaler is not None and (path / "scaler.pt").exists():
        scaler.load_state_dict(load_pt(path / "scaler.pt"))
    rng_file = path / f"rng-{accelerator.process_index}.pt"
    if not rng_file.exists():
        rng_file = path / "rng-0.pt"
    set_rng_state(load_pt(rng_file))
    return trainable, state


def load_trainable(path: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(path / "trainable.safetensors"))


def apply_retention(run_dir: Path, keep_last: int, best_step: int | None) -> list[Path]:
    """Delete all complete checkpoints but the newest keep_last and the best; return the deleted."""
    ckpts = list_checkpoints(run_dir)
    keep = {s for s, _ in ckpts[-keep_last:]}
    if best_step is not None:
        keep.add(best_step)
    deleted = []
    for step, d in ckpts:
        if step not in keep:
            shutil.rmtree(d, ignore_errors=True)
            deleted.append(d)
    for stale in (Path(run_dir) / CKPT_DIR).glob(".step-*.tmp"):
        shutil.rmtree(stale, ignore_errors=True)
    return deleted
