"""Sparsity sweep: CER, size and latency at each sparsity, as a table and a PNG curve, with the knee.

    from soritune.compress.sweep import SweepConfig, run
    result = run(SweepConfig(model="bundled:whisper-base", eval_manifest="data/test.jsonl",
                             sparsity=[0.1, 0.3, 0.5, 0.7, 0.9], out="sweep/"))

method=magnitude prunes the (adapter-merged) model one-shot at each point, no retraining.
method=lottery runs one lottery-ticket schedule whose rounds reach the points in turn (prune,
rewind, retrain LoRA at each), the published LoRA + lottery-ticket setting; it needs `train`.

Reported per point, all measured: CER on the evaluation clips; the dense weight-file size (zeros
stored densely: it does not shrink) and the bytes of the pruned matrices in PyTorch's CSR format
(what a sparse format would store); decoding time with the dense kernels actually used (expected
flat: unstructured zeros are still multiplied); and a CSR-vs-dense matmul micro-benchmark of
one pruned matrix, so any sparse-kernel speed-up is a measurement, not a claim.
The knee is the largest sparsity whose CER stays within `tolerance_points` of the dense model's,
with every smaller sparsity also within it (the published LoRA + LTH finding: near 50%).
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Literal

from pydantic import Field, field_validator, model_validator

from soritune.config import StageConfig, validate
from soritune.infer.options import MAX_NEW_TOKENS
from soritune.models import load
from soritune.models.encoder import ENCODER_INPUT_HELP, EncoderInput
from soritune.rundir import write_run
from soritune.train.config import TrainOverrides

PUBLISHED_KNEE = 0.5


class SweepConfig(StageConfig):
    """Settings of `soritune prune sweep`."""

    model: str = Field(description="model spec")
    adapter: str | None = Field(None, description="PEFT adapter merged in first")
    out: Path = Field(description="output directory (sweep.json, sweep.md, sweep.png)")
    sparsity: list[float] = Field(default_factory=lambda: [0.1, 0.3, 0.5, 0.7, 0.9], description="sparsity points (0 is added as the dense reference)")
    method: Literal["magnitude", "lottery"] = Field("magnitude", description="one-shot magnitude, or a lottery-ticket schedule with retraining")
    scope: Literal["global", "layer"] = Field("global", description="magnitude ranking scope")
    eval_manifest: str | None = Field(None, description="manifest for CER and latency (default: synthetic Korean clips)")
    eval_limit: int | None = Field(50, ge=1, description="utterances used")
    train: str | None = Field(None, description="lottery: training manifest")
    dev: str | None = Field(None, description="lottery: dev manifest")
    train_overrides: TrainOverrides = Field(default_factory=dict, description="lottery: TrainConfig fields for every round")
    tolerance_points: float = Field(1.0, gt=0, description="knee: CER points above the dense model still counted as intact")
    encoder_input: EncoderInput = Field("padded", description="decoding input: " + ENCODER_INPUT_HELP)
    repeats: int = Field(3, ge=1, description="timed decoding passes per point (median)")
    batch_size: int = Field(8, ge=1, description="decoding batch size")
    max_new_tokens: int = Field(128, ge=1, le=MAX_NEW_TOKENS, description="decoding token limit")
    seed: int = Field(0, description="seed for tiny:/random: specs")

    @field_validator("sparsity")
    @classmethod
    def _points(cls, v):
        if not v or any(not 0 < x < 1 for x in v):
            raise ValueError(f"sparsity points must lie in (0, 1), got {v}")
        return sorted(set(v))

    @model_validator(mode="after")
    def _lottery_needs_train(self):
        if self.method == "lottery" and not self.train:
            raise ValueError("method=lottery needs train (a manifest for each round's LoRA)")
        return self


@dataclass
class SweepPoint:
    sparsity: float
    mask_sparsity: float
    cer: float | None
    cer_delta_points: float | None
    file_mb: float
    csr_mb: float | None  # weight file MB if the pruned matrices were stored as torch CSR (measured tensors)
    latency_median_s: float | None
    rtfx: float | None
    n_hyp_chars: int
    csr_matmul_speedup: dict | None  # dense time / CSR time on one pruned matrix


@dataclass
class SweepResult:
    out: str
    method: str
    points: list[SweepPoint]
    knee_sparsity: float | None
    published_knee: float = PUBLISHED_KNEE
    tolerance_points: float = 1.0
    png: str | None = None
    note: str = ("latency uses dense kernels (unstructured zeros are still multiplied); csr_matmul_speedup is a "
                 "measured micro-benchmark of one pruned matrix with torch.sparse CSR, not an end-to-end claim")
    details: dict = field(default_factory=dict)


def csr_bytes(weights: dict, masks: dict) -> int:
    """Bytes of the pruned matrices as torch CSR tensors (values + column indices + row pointers)."""
    import warnings

    total = 0
    for n, m in masks.items():
        with warnings.catch_warnings():  # "sparse CSR support is in beta"
            warnings.simplefilter("ignore")
            csr = (weights[n].detach() * m).to_sparse_csr()
        total += sum(t.numel() * t.element_size() for t in (csr.values(), csr.col_indices(), csr.crow_indices()))
    return total


def csr_matmul_bench(weight, repeats: int = 5) -> dict:
    """Median time of W @ X (dense) vs CSR(W) @ X for a decode-step X (8 columns) and an encoder X."""
    import warnings

    import torch

    out = {"shape": list(weight.shape), "density": round(float((weight != 0).float().mean()), 4)}
    with warnings.catch_warnings():  # "sparse CSR support is in beta"
        warnings.simplefilter("ignore")
        csr = weight.detach().to_sparse_csr()
    for label, cols in (("decode_8", 8), ("encoder_1500", 1500)):
        x = torch.randn(weight.shape[1], cols)
        times = {}
        for kind, fn in (("dense", lambda x=x: weight.detach() @ x), ("csr", lambda x=x: torch.sparse.mm(csr, x))):
            fn()
            ts = []
            for _ in range(repeats):
                t0 = time.perf_counter()
                fn()
                ts.append(time.perf_counter() - t0)
            times[kind] = statistics.median(ts)
        out[label] = round(times["dense"] / times["csr"], 3) if times["csr"] > 0 else None
    return out


def _csr_model_mb(weights: dict, masks: dict, file_mb: float) -> float:
    """The weight file's MB with the pruned matrices stored as CSR instead of densely."""
    dense = sum(weights[n].numel() * weights[n].element_size() for n in masks)
    return round(file_mb + (csr_bytes(weights, masks) - dense) / 1e6, 3)


def knee(points: list[SweepPoint], tolerance: float) -> float | None:
    """Largest sparsity whose CER and every smaller sparsity's CER stay within tolerance of dense."""
    found = None
    for p in sorted(points, key=lambda p: p.sparsity):
        if p.sparsity == 0:
            continue
        if p.cer_delta_points is None or p.cer_delta_points > tolerance:
            break
        found = p.sparsity
    return found


def _point(model, processor, masks, s, clips, cfg, base_cer, file_mb, weights) -> SweepPoint:
    from soritune.compress import measure
    from soritune.compress.masks import mask_sparsity

    backend = measure.torch_backend(model, processor, encoder_input=cfg.encoder_input)
    scored = measure.score_model(backend, clips, batch_size=cfg.batch_size, max_new_tokens=cfg.max_new_tokens,
                                 timing=True, repeats=cfg.repeats)
    cer = scored["cer"]
    delta = None if base_cer is None else round(100 * (cer - base_cer), 3)
    if masks:
        biggest = max(masks, key=lambda n: masks[n].numel())
        bench = csr_matmul_bench(weights[biggest])
    else:
        bench = None
    return SweepPoint(sparsity=s, mask_sparsity=mask_sparsity(masks) if masks else 0.0, cer=cer,
                      cer_delta_points=delta if s > 0 else 0.0, file_mb=file_mb,
                      csr_mb=_csr_model_mb(weights, masks, file_mb) if masks else None,
                      latency_median_s=scored["timing"]["median_s"], rtfx=scored["timing"]["rtfx"],
                      n_hyp_chars=sum(len(h) for h in scored["hyps"]), csr_matmul_speedup=bench)


def _magnitude_models(cfg: SweepConfig):
    """Yield (sparsity, model, processor, masks) for 0 and each point, one-shot from the same weights."""
    import torch

    from soritune.compress.masks import (
        apply_masks,
        magnitude_scores,
        prunable_params,
        select_masks,
    )

    bundle = load(cfg.model, cfg.adapter, seed=cfg.seed)
    model = bundle.model
    params = prunable_params(model)
    original = {n: p.detach().clone() for n, p in params.items()}
    scores = magnitude_scores(params, bundle.masks)
    yield 0.0, model, bundle.processor, {}
    for s in cfg.sparsity:
        with torch.no_grad():
            for n, p in params.items():
                p.copy_(original[n])
        masks = select_masks(scores, s, cfg.scope)
        apply_masks(model, masks)
        yield s, model, bundle.processor, masks


def _lottery_models(cfg: SweepConfig, progress):
    from soritune.compress.masks import load_masks
    from soritune.compress.prune_lottery import LotteryConfig, merged_with
    from soritune.compress.prune_lottery import run as lottery

    lcfg = LotteryConfig(model=cfg.model, adapter=cfg.adapter, out=Path(cfg.out) / "lottery", train=cfg.train,
                         dev=cfg.dev, evaluate=False,
                         schedule=cfg.sparsity, control=False, keep_intermediate=True, scope=cfg.scope,
                         train_overrides=cfg.train_overrides, max_new_tokens=cfg.max_new_tokens, seed=cfg.seed)
    res = lottery(lcfg, progress=progress)
    base0 = Path(res.out) / "pretrained"
    m, p = merged_with(base0, Path(res.out) / "round-0" / "adapter", {})
    yield 0.0, m, p, {}
    for r, s in enumerate(cfg.sparsity, 1):
        base = Path(res.out) / f"round-{r}" / "base"
        masks = load_masks(base)
        m, p = merged_with(base, Path(res.out) / f"round-{r}" / "run" / "adapter", masks)
        yield s, m, p, masks


def run(config: SweepConfig | dict, progress: Callable[[dict], None] | None = None) -> SweepResult:
    import tempfile

    from soritune.compress import measure
    from soritune.compress.modelio import mb, save_model, weights_file_bytes

    cfg = config if isinstance(config, SweepConfig) else validate(SweepConfig, dict(config))
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    clips = measure.load_clips(cfg.eval_manifest, cfg.eval_limit)
    models = _magnitude_models(cfg) if cfg.method == "magnitude" else _lottery_models(cfg, progress)
    points: list[SweepPoint] = []
    base_cer = file_mb = None
    for s, model, processor, masks in models:
        if progress:
            progress({"event": "point", "sparsity": s, "done": len(points), "total": len(cfg.sparsity) + 1})
        if file_mb is None:
            with tempfile.TemporaryDirectory(prefix="soritune-size-") as tmp:
                save_model(model, processor, tmp)
                file_mb = mb(weights_file_bytes(tmp))
        weights = dict(model.named_parameters())
        pt = _point(model, processor, masks, s, clips, cfg, base_cer, file_mb, weights)
        if s == 0:
            base_cer = pt.cer
        points.append(pt)
    result = SweepResult(out=str(out), method=cfg.method, points=points, knee_sparsity=knee(points, cfg.tolerance_points),
                         tolerance_points=cfg.tolerance_points,
                         details={"eval_set": clips.source, "n_eval": len(clips), "model": cfg.model, "adapter": cfg.adapter})
    from soritune.compress.sweep_report import write_markdown, write_png

    result.png = str(write_png(result, out / "sweep.png"))
    write_markdown(result, out / "sweep.md")
    write_run(out, cfg, result, stage="sweep", legacy=("sweep.json",))
    return result
