"""Pruning masks: which weights are prunable, exact-count selection, apply, save, load, measure.

A mask is a bool tensor shaped like its weight, True = kept. Prunable weights are the linear
matrices of the attention and feed-forward blocks (q_proj, k_proj, v_proj, out_proj, fc1, fc2)
of the encoder and/or decoder layers. Never prunable: the token embedding (tied to `proj_out`,
so pruning it would prune the output layer too), positional embeddings, convolutions, layer
norms and biases.

Selection is exact: `lowest(scores, k)` marks exactly k entries (ties broken by position), so a
requested sparsity is met to the weight (k = round(sparsity * n)), globally or per matrix.

Masks are saved as `masks.safetensors` next to the model weights, with their settings in the
file's metadata; `soritune.models.load` re-applies them after merging an adapter
(`apply_masks`/`load_masks` live in `soritune.models.formats`, beside the other readers).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Iterable, Literal

from soritune.errors import CompressError
from soritune.models.formats import MASK_FILE, apply_masks, load_masks  # noqa: F401 - the readers live with the loader

LINEAR_NAMES = ("q_proj", "k_proj", "v_proj", "out_proj", "fc1", "fc2")
Side = Literal["encoder", "decoder", "both"]
Scope = Literal["global", "layer"]


def prunable_regex(modules: Iterable[str] = LINEAR_NAMES, side: Side = "both") -> str:
    stacks = {"encoder": "encoder", "decoder": "decoder", "both": "(?:encoder|decoder)"}[side]
    names = "|".join(sorted(set(modules)))
    return rf"(?:.*\.)?model\.{stacks}\.layers\.\d+\.(?:(?:self_attn|encoder_attn)\.)?(?:{names})\.weight"


def prunable_params(model, modules: Iterable[str] = LINEAR_NAMES, side: Side = "both") -> dict:
    """name -> parameter for every prunable weight of `model` (a plain Whisper model)."""
    modules = tuple(modules)
    bad = [m for m in modules if m not in LINEAR_NAMES]
    if bad:
        raise CompressError(f"modules: unknown {bad}; allowed: {', '.join(LINEAR_NAMES)}")
    rx = re.compile(prunable_regex(modules, side))
    found = {n: p for n, p in model.named_parameters() if rx.fullmatch(n)}
    if not found:
        raise CompressError(f"no prunable weight matches modules={list(modules)} side={side!r}")
    return found


def lowest(scores, k: int):
    """Bool tensor (shape of scores): True at exactly the k smallest entries, ties by position."""
    import torch

    flat = scores.reshape(-1)
    n = flat.numel()
    k = max(0, min(int(k), n))
    out = torch.zeros(n, dtype=torch.bool, device=flat.device)
    if k == 0:
        return out.view(scores.shape)
    if k == n:
        return torch.ones_like(out).view(scores.shape)
    thresh = torch.kthvalue(flat.float().cpu(), k).values.to(flat.device)
    below = flat < thresh
    need = k - int(below.sum())
    equal_idx = torch.nonzero(flat == thresh, as_tuple=False).reshape(-1)[:need]
    out |= below
    out[equal_idx] = True
    return out.view(scores.shape)


def magnitude_scores(params: dict, masks: dict | None = None) -> dict:
    """|w| per weight; already-pruned entries score -1 so they are chosen first (stay pruned)."""
    import torch

    out = {}
    for n, p in params.items():
        s = p.detach().abs().float()
        if masks is not None and n in masks:
            s = torch.where(masks[n].to(s.device), s, torch.full_like(s, -1.0))
        out[n] = s
    return out


def select_masks(scores: dict, sparsity: float, scope: Scope = "global") -> dict:
    """Keep-masks that prune exactly round(sparsity * n) of the scored entries (lowest first).

    scope=global ranks all matrices together; scope=layer prunes each matrix to the sparsity."""
    import torch

    if not 0.0 <= sparsity <= 1.0:
        raise CompressError(f"sparsity: {sparsity} is not in [0, 1]")
    if scope == "layer":
        return {n: ~lowest(s, round(sparsity * s.numel())) for n, s in scores.items()}
    names = list(scores)
    flat = torch.cat([scores[n].reshape(-1).cpu() for n in names])
    pruned = lowest(flat, round(sparsity * flat.numel()))
    masks, start = {}, 0
    for n in names:
        size = scores[n].numel()
        masks[n] = ~pruned[start:start + size].view(scores[n].shape)
        start += size
    return masks


def random_masks(params: dict, sparsity: float, seed: int = 0, like: dict | None = None) -> dict:
    """Control masks: random positions, same count as `like` per matrix (or `sparsity` globally)."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    scores = {n: torch.rand(p.shape, generator=gen) for n, p in params.items()}
    if like is None:
        return select_masks(scores, sparsity, "global")
    return {n: ~lowest(scores[n], int((~like[n]).sum())) for n in params}


def mask_sparsity(masks: dict) -> float:
    total = sum(m.numel() for m in masks.values())
    return sum(int((~m).sum()) for m in masks.values()) / total if total else 0.0


def weight_sparsity(model, names: Iterable[str]) -> float:
    """Fraction of exact zeros among the named weights (measured on the weights themselves)."""
    params = dict(model.named_parameters())
    names = list(names)
    total = sum(params[n].numel() for n in names)
    return sum(int((params[n] == 0).sum()) for n in names) / total if total else 0.0


def sparsity_report(model, masks: dict) -> dict:
    """Mask sparsity, measured weight sparsity, share of all parameters zeroed, per-matrix detail."""
    params = dict(model.named_parameters())
    total_params = sum(p.numel() for p in model.parameters())
    pruned = sum(int((~m).sum()) for m in masks.values())
    per_layer = {n: round(float((~m).float().mean()), 6) for n, m in masks.items()}
    return {
        "n_prunable": sum(m.numel() for m in masks.values()),
        "n_pruned": pruned,
        "mask_sparsity": mask_sparsity(masks),
        "weight_sparsity": weight_sparsity(model, masks),
        "model_sparsity": pruned / total_params if total_params else 0.0,
        "n_matrices": len(masks),
        "per_matrix": per_layer,
        "pruned_entries_zero": all(bool((params[n][~m] == 0).all()) for n, m in masks.items()),
    }


def save_masks(directory: str | Path, masks: dict, meta: dict | None = None) -> Path:
    """Write DIR/masks.safetensors (bool tensors) with `meta` (strings) in its header."""
    from safetensors.torch import save_file

    path = Path(directory) / MASK_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({n: m.contiguous().cpu() for n, m in masks.items()}, str(path),
              metadata={k: str(v) for k, v in (meta or {}).items()})
    return path


def mask_metadata(directory: str | Path) -> dict:
    from safetensors import safe_open

    with safe_open(str(Path(directory) / MASK_FILE), framework="pt") as f:
        return dict(f.metadata() or {})
