"""Fit a setup to a card: the largest micro-batch whose predicted peak fits, and whether it needs
gradient checkpointing; and a sweep over batch sizes and methods (table + plot).

The search traces a few batch sizes, never all: each phase's peak (forward, backward, optimizer)
grows linearly with the batch, so batches 1 and 2 give a first guess; traces at the guess and the
next size then bracket the answer, bisecting until the largest fitting size is traced and the next
one traced as not fitting.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from soritune.errors import ConfigError
from soritune.plan.config import PlanConfig
from soritune.plan.planner import PlanResult, plan

# nominal memory in GB (GiB as nvidia-smi shows them); a bare "NNGB" is also accepted
GPUS = {"t4": 16, "v100": 16, "v100-32gb": 32, "rtx3060": 12, "rtx3080": 10, "rtx3090": 24, "rtx4090": 24,
        "l4": 24, "a10": 24, "a6000": 48, "l40s": 48, "a100": 80, "a100-40gb": 40, "h100": 80, "h200": 141}


def gpu_gb(name: str) -> float:
    """'24GB', '8gb', '12 GB', 'rtx3090', 'a6000', 'h100' -> GB."""
    key = name.strip().lower().replace(" ", "")
    if key in GPUS:
        return float(GPUS[key])
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(?:gb|g|gib)?", key)
    if m:
        return float(m.group(1))
    raise ConfigError(f"gpu: unknown card {name!r}; give its memory (e.g. 8GB, 24GB) or one of {', '.join(GPUS)}")


@dataclass
class FitResult:
    """The largest micro-batch that fits `gpu_gb`; plan at that size (None when even 1 does not fit)."""

    gpu: str
    gpu_gb: float
    batch_size: int
    gradient_checkpointing: bool
    gradient_checkpointing_needed: bool
    fits: bool
    plan: PlanResult | None
    next_peak_gb: float | None  # the prediction at batch_size + 1 (does not fit)
    traced: dict = field(default_factory=dict)  # batch size -> peak_gb, every trace the search made


def _guess(p1: PlanResult, p2: PlanResult, capacity_gb: float, cfg: PlanConfig) -> int:
    """Largest batch under capacity when each phase's traced peak grows linearly with the batch."""
    best = math.inf
    scale = 1 + cfg.allocator_overhead
    fixed = cfg.cuda_context_gb + cfg.cublas_workspace_gb
    for ph, a in p1.phase_peaks_gb.items():
        b = p2.phase_peaks_gb.get(ph, a) - a
        if b > 1e-9:
            best = min(best, 1 + (capacity_gb / scale - fixed / scale - a) / b)
    return max(1, int(best)) if math.isfinite(best) else 1024


def fit_batch(cfg: PlanConfig, gpu: str, max_batch: int = 1024,
              progress: Callable[[str], None] | None = None) -> FitResult:
    """See the module docstring; tries without gradient checkpointing first unless cfg asks for it."""
    capacity = gpu_gb(gpu)
    for ckpt in ([True] if cfg.gradient_checkpointing else [False, True]):
        traced: dict[int, PlanResult] = {}

        def at(b: int, traced=traced, ckpt=ckpt) -> PlanResult:
            if b not in traced:
                if progress:
                    progress(f"batch {b}{' + checkpointing' if ckpt else ''}")
                traced[b] = plan(cfg.model_copy(update={"batch_size": b, "gradient_checkpointing": ckpt}))
            return traced[b]

        if at(1).peak_gb > capacity:
            continue
        lo, hi = 1, None  # lo fits; hi (when known) does not
        guess = min(max_batch, _guess(at(1), at(2), capacity, cfg)) if max_batch > 1 else 1
        while hi is None or hi - lo > 1:
            probe = guess if hi is None else (lo + hi) // 2
            probe = min(max(probe, lo + 1), max_batch)
            if probe <= lo:  # reached max_batch
                break
            if at(probe).peak_gb <= capacity:
                lo = probe
                guess = probe + 1
            else:
                hi = probe
        nxt = at(lo + 1).peak_gb if lo < max_batch else None
        return FitResult(gpu, capacity, lo, ckpt, ckpt and not cfg.gradient_checkpointing, True, at(lo), nxt,
                         {b: p.peak_gb for b, p in sorted(traced.items())})
    return FitResult(gpu, capacity, 0, True, True, False, None, None, {})


def sweep(cfg: PlanConfig, batch_sizes: list[int], methods: list[str],
          progress: Callable[[str], None] | None = None) -> list[PlanResult]:
    """One plan per (method, batch size)."""
    rows = []
    for method in methods:
        for b in batch_sizes:
            if progress:
                progress(f"{method} batch {b}")
            rows.append(plan(cfg.model_copy(update={"method": method, "batch_size": b})))
    return rows


def plot_sweep(rows: list[PlanResult], path, cards_gb=(8, 12, 16, 24, 48)) -> None:
    """Peak GB against batch size, one line per method, card sizes as dashed lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for method in dict.fromkeys(r.method for r in rows):
        pts = [(r.batch_size, r.peak_gb) for r in rows if r.method == method]
        ax.plot(*zip(*pts), marker="o", label=method)
    top = max(r.peak_gb for r in rows)
    for c in cards_gb:
        if c <= top * 1.2:
            ax.axhline(c, ls="--", lw=0.8, color="grey")
            ax.text(ax.get_xlim()[0], c, f" {c} GB", va="bottom", fontsize=8, color="grey")
    ax.set_xlabel("micro-batch size")
    ax.set_ylabel("predicted peak GPU memory (GB)")
    ax.set_title(f"{rows[0].model}, {rows[0].precision}")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def fit_train_config(cfg, progress=None):
    """`soritune train --fit-gpu`: the TrainConfig with the batch size (and gradient checkpointing)
    that fits the card, planned for the longest input and label the config admits."""
    plan_cfg = PlanConfig.from_train(cfg)
    fit = fit_batch(plan_cfg, cfg.fit_gpu)
    if not fit.fits:
        raise ConfigError(f"fit_gpu: {cfg.model} with method {cfg.method} does not fit {cfg.fit_gpu} "
                          f"({fit.gpu_gb:g} GB) even at batch size 1 with gradient checkpointing; try method=qlora4")
    message = (f"fit_gpu {cfg.fit_gpu}: batch size {fit.batch_size}"
               f"{' with gradient checkpointing' if fit.gradient_checkpointing else ''} "
               f"(predicted peak {fit.plan.peak_gb:.2f} of {fit.gpu_gb:g} GB; soritune plan)")
    if progress is not None:
        progress({"event": "fit", "batch_size": fit.batch_size, "peak_gb": fit.plan.peak_gb, "message": message})
    return cfg.model_copy(update={"batch_size": fit.batch_size, "fit_gpu": None,
                                  "gradient_checkpointing": fit.gradient_checkpointing})


def run_fitted(cfg, progress=None):
    """`soritune train --fit-gpu` as a library call: fit the config to `cfg.fit_gpu`, then train."""
    from soritune.train.run import run

    return run(fit_train_config(cfg, progress) if cfg.fit_gpu else cfg, progress=progress)
