"""Unstructured magnitude pruning to an exact target sparsity, globally or per matrix.

    from soritune.compress.prune_magnitude import MagnitudeConfig, run
    result = run(MagnitudeConfig(model="bundled:whisper-base", sparsity=0.5, out="pruned/"))

The adapter (if any) is merged first, so the fine-tuned weights are what gets pruned. OUT is a
Hugging Face directory (`hf:OUT` loads it) plus `masks.safetensors`, `prune_report.json` and
`config.yaml`. Zeros are stored densely: the file is as large as the dense model and decoding
runs the same dense kernels, so no speed-up is claimed (see `sparsity_note`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pydantic import Field

from soritune.config import StageConfig, validate
from soritune.infer.options import MAX_NEW_TOKENS
from soritune.models import load
from soritune.rundir import write_run

SPARSITY_NOTE = ("unstructured sparsity: zeros are stored and multiplied densely (no sparse kernel is used), "
                 "so the file is not smaller and decoding is not faster; any latency here is measured, not assumed")
LinearName = Literal["q_proj", "k_proj", "v_proj", "out_proj", "fc1", "fc2"]
ALL_LINEAR: list = ["q_proj", "k_proj", "v_proj", "out_proj", "fc1", "fc2"]


class MagnitudeConfig(StageConfig):
    """Settings of `soritune prune --method magnitude`."""

    model: str = Field(description="model spec to prune (bundled:whisper-base, hf:DIR, tiny:, ...)")
    adapter: str | None = Field(None, description="PEFT adapter merged into the model before pruning")
    out: Path = Field(description="output directory (HF model + masks.safetensors + prune_report.json)")
    sparsity: float = Field(0.5, ge=0.0, le=1.0, description="fraction of the prunable weights set to zero")
    scope: Literal["global", "layer"] = Field("global", description="rank all matrices together, or prune each to the sparsity")
    modules: list[LinearName] = Field(default_factory=lambda: list(ALL_LINEAR), description="linear layers that may be pruned")
    side: Literal["encoder", "decoder", "both"] = Field("both", description="which stack(s) may be pruned")
    eval_manifest: str | None = Field(None, description="manifest to score CER before and after (optional)")
    eval_limit: int | None = Field(50, ge=1, description="utterances of eval_manifest scored")
    batch_size: int = Field(8, ge=1, description="decoding batch size for the CER check")
    max_new_tokens: int = Field(128, ge=1, le=MAX_NEW_TOKENS, description="decoding token limit for the CER check")
    seed: int = Field(0, description="initialisation seed for tiny:/random: specs")


@dataclass
class PruneResult:
    """What a prune run produced; saved as OUT/prune_report.json."""

    out: str
    method: str
    model: str
    adapter: str | None
    target_sparsity: float
    mask_sparsity: float
    weight_sparsity: float
    model_sparsity: float
    n_pruned: int
    n_prunable: int
    params: int
    dense_mb: float
    file_mb: float
    sparse_storage_mb: float  # CSR-like estimate (values + int32 indices) for the pruned matrices
    cer_before: float | None = None
    cer_after: float | None = None
    sparsity_note: str = SPARSITY_NOTE
    details: dict = field(default_factory=dict)


def score_if_asked(model, processor, manifest: str | None, limit: int | None, batch_size: int,
                   max_new_tokens: int, clips=None) -> tuple[float | None, object]:
    """CER of model on the manifest (None when no manifest); returns (cer, clips) for reuse."""
    if manifest is None and clips is None:
        return None, None
    from soritune.compress import measure

    clips = clips or measure.load_clips(manifest, limit)
    scored = measure.score_model(measure.torch_backend(model, processor), clips, batch_size=batch_size,
                                 max_new_tokens=max_new_tokens)
    return scored["cer"], clips


def write_pruned(model, processor, masks: dict, out: Path, *, method: str, meta: dict) -> dict:
    """Save model + masks; return the sparsity and size measurements of what was written."""
    from soritune.compress.masks import save_masks, sparsity_report
    from soritune.compress.modelio import (
        dense_bytes,
        mb,
        param_count,
        save_model,
        sparse_storage_bytes,
        weights_file_bytes,
    )

    save_model(model, processor, out)
    save_masks(out, masks, {"method": method, **meta})
    rep = sparsity_report(model, masks)
    elem = next(model.parameters()).element_size()
    pruned_sparse = sum(sparse_storage_bytes(int(m.sum()), m.numel(), elem) for m in masks.values())
    rest = dense_bytes(model) - sum(m.numel() * elem for m in masks.values())
    return {**rep, "params": param_count(model), "dense_mb": mb(dense_bytes(model)),
            "file_mb": mb(weights_file_bytes(out)), "sparse_storage_mb": mb(rest + pruned_sparse)}


def run(config: MagnitudeConfig | dict) -> PruneResult:
    """Merge the adapter, prune to the target sparsity, save model + masks + report."""
    from soritune.compress.masks import (
        apply_masks,
        magnitude_scores,
        prunable_params,
        select_masks,
    )

    cfg = config if isinstance(config, MagnitudeConfig) else validate(MagnitudeConfig, dict(config))
    out = Path(cfg.out)
    bundle = load(cfg.model, cfg.adapter, seed=cfg.seed)
    model, processor = bundle.model, bundle.processor
    cer_before, clips = score_if_asked(model, processor, cfg.eval_manifest, cfg.eval_limit, cfg.batch_size,
                                       cfg.max_new_tokens)
    params = prunable_params(model, cfg.modules, cfg.side)
    masks = select_masks(magnitude_scores(params, bundle.masks), cfg.sparsity, cfg.scope)
    apply_masks(model, masks)
    cer_after, _ = score_if_asked(model, processor, None, None, cfg.batch_size, cfg.max_new_tokens, clips=clips)
    measured = write_pruned(model, processor, masks, out, method="magnitude",
                            meta={"sparsity": cfg.sparsity, "scope": cfg.scope})
    result = PruneResult(
        out=str(out), method="magnitude", model=cfg.model, adapter=cfg.adapter, target_sparsity=cfg.sparsity,
        mask_sparsity=measured["mask_sparsity"], weight_sparsity=measured["weight_sparsity"],
        model_sparsity=measured["model_sparsity"], n_pruned=measured["n_pruned"], n_prunable=measured["n_prunable"],
        params=measured["params"], dense_mb=measured["dense_mb"], file_mb=measured["file_mb"],
        sparse_storage_mb=measured["sparse_storage_mb"], cer_before=cer_before, cer_after=cer_after,
        details={"scope": cfg.scope, "modules": cfg.modules, "side": cfg.side,
                 "pruned_entries_zero": measured["pruned_entries_zero"], "per_matrix": measured["per_matrix"]},
    )
    write_run(out, cfg, result, stage="prune", legacy=("prune_report.json",))
    return result
