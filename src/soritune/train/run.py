"""`run(config) -> TrainResult`: the train stage end to end (also what `soritune train` calls).

Run dir: config.yaml (resolved), checkpoints/, adapter/ (PEFT) or model/ (full FT), merged/
(--merge), metrics.jsonl, summary.json, skipped.jsonl (rows not trained on, with reasons),
dev_predictions.jsonl (last evaluation), tb/ (TensorBoard, optional).
"""

from __future__ import annotations

import platform
import resource
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from soritune.config import save_config, validate
from soritune.data.augment import augmenter
from soritune.data.dataset import ManifestDataset, WhisperCollator
from soritune.errors import ConfigError
from soritune.jsonio import read_json, write_jsonl
from soritune.rundir import write_run
from soritune.train.adapters import BuiltModel, build_model, export, export_merged, load_trainable_state
from soritune.train.checkpoint import CKPT_DIR, checkpoint_name, load_trainable
from soritune.train.config import TrainConfig, resume_mismatches
from soritune.train.dev_eval import dev_rows
from soritune.train.loop import DataPlan, Trainer
from soritune.train.metrics_log import MetricsLog

OUTPUTS = ("checkpoints", "adapter", "model", "merged", "tb", "metrics.jsonl", "summary.json",
           "skipped.jsonl", "dev_predictions.jsonl", "config.yaml")
RUN_MARKERS = ("checkpoints", "adapter", "model", "merged", "summary.json")  # a run happened here


@dataclass
class TrainResult:
    """What a training run did; saved as RUN_DIR/summary.json."""

    run_dir: str
    status: str  # completed | early_stopping | nan
    message: str
    steps: int
    total_steps: int
    samples: int
    samples_per_s: float
    train_wall_s: float
    total_wall_s: float
    peak_mem_gb: float  # GPU: max allocated; CPU: peak RSS of this process
    peak_mem_reserved_gb: float | None
    peak_rss_gb: float
    final_loss: float | None
    initial_dev_cer: float | None
    best_dev_cer: float | None
    best_step: int | None
    last_dev_cer: float | None
    exported_step: int
    weights_dir: str | None
    merged_dir: str | None
    trainable_params: int
    total_params: int
    n_train: int
    n_skipped: int
    skipped_by_reason: dict
    n_dev: int
    resumed_from_step: int | None
    world_size: int
    device: str
    mixed_precision: str
    dynamic_length: bool
    chunked_ce: int
    encoder_cache_hits: int | None
    versions: dict = field(default_factory=dict)


def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for pkg in ("soritune", "torch", "transformers", "peft", "accelerate", "bitsandbytes"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            pass
    return out


def make_accelerator(cfg: TrainConfig):
    import torch
    from accelerate import Accelerator

    if cfg.device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device: 'cuda' asked for but no CUDA GPU is visible (allowed: auto, cpu, cuda)")
    cuda = torch.cuda.is_available() and cfg.device != "cpu"
    mp = cfg.mixed_precision
    if mp == "auto":
        mp = ("bf16" if torch.cuda.is_bf16_supported() else "fp16") if cuda else "no"
    if mp == "fp16" and not cuda:
        raise ConfigError("mixed_precision: fp16 needs a CUDA GPU (allowed on CPU: no, bf16)")
    return Accelerator(cpu=not cuda, mixed_precision=mp)


def _reset_accelerate(acc) -> None:
    """Let a later run() in this process build a fresh Accelerator (single-process runs only)."""
    if acc.num_processes == 1:
        from accelerate.state import AcceleratorState, GradientState

        AcceleratorState._reset_state(reset_partial_state=True)
        GradientState._reset_state()


def prepare_run_dir(cfg: TrainConfig, acc) -> tuple[Path, Path | None]:
    """Check resume/overwrite rules, write config.yaml; return (run_dir, checkpoint to resume or None)."""
    from soritune.data.manifest import ManifestError
    from soritune.train.checkpoint import latest_checkpoint

    for field_name in ("train", "dev"):
        path = getattr(cfg, field_name)
        if path and not Path(path).is_file():
            raise ManifestError(f"{field_name}: manifest not found: {path}")
    run_dir = Path(cfg.out)
    if run_dir.exists() and not run_dir.is_dir():
        raise ConfigError(f"out: {run_dir} exists and is not a directory")
    ckpt = None
    if cfg.resume:
        saved = run_dir / "config.yaml"
        if saved.exists():
            from soritune.config import read_yaml

            bad = resume_mismatches(read_yaml(saved), cfg)
            if bad:
                raise ConfigError(f"resume: the config differs from the run's in {'; '.join(bad)} "
                                  f"(resume with the same settings, or start a new --out)")
        ckpt = latest_checkpoint(run_dir)
    else:
        markers = [n for n in RUN_MARKERS if (run_dir / n).exists()]
        if markers and not cfg.overwrite:
            raise ConfigError(f"out: {run_dir} already holds a run ({', '.join(markers)}); "
                              f"use --resume to continue it, --overwrite to start over, or a new --out")
        if acc.is_main_process:
            for name in (n for n in OUTPUTS if (run_dir / n).exists()):
                p = run_dir / name
                shutil.rmtree(p) if p.is_dir() else p.unlink()
    acc.wait_for_everyone()
    if acc.is_main_process:
        run_dir.mkdir(parents=True, exist_ok=True)
        resolved = cfg.model_copy(update={"lr": cfg.resolved_lr(), "resume": False, "overwrite": False})
        save_config(resolved, run_dir / "config.yaml")
    acc.wait_for_everyone()
    return run_dir, ckpt


def _memory(acc) -> tuple[float, float | None, float]:
    import torch

    rss_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2  # KiB on Linux
    if acc.device.type == "cuda":
        return (torch.cuda.max_memory_allocated(acc.device) / 1024 ** 3,
                torch.cuda.max_memory_reserved(acc.device) / 1024 ** 3, rss_gb)
    return rss_gb, None, rss_gb


def _device_name(acc) -> str:
    import torch

    if acc.device.type == "cuda":
        return f"{torch.cuda.get_device_name(acc.device)} x{acc.num_processes}"
    return f"cpu ({torch.get_num_threads()} threads) x{acc.num_processes} ({platform.processor() or platform.machine()})"


@dataclass
class RunContext:
    """What `prepare` set up for one training run: the accelerator, the run dir, the checkpoint to resume.

    A context manager: leaving it releases accelerate's process-wide state, so a later run in this
    process builds a fresh Accelerator."""

    cfg: TrainConfig
    accelerator: Any
    run_dir: Path
    checkpoint: Path | None
    compute_dtype: Any
    t_start: float

    def __enter__(self) -> RunContext:
        return self

    def __exit__(self, *exc) -> None:
        _reset_accelerate(self.accelerator)


@dataclass
class Fitted:
    """What `fit` trained: the loop state, the trainer (timings), the data it used, the exported step."""

    state: Any
    trainer: Any
    dataset: Any
    dev: list
    exported_step: int
    resume_step: int | None


def prepare(config: TrainConfig | dict) -> RunContext:
    """Validate, set threads, build the Accelerator, check and write the run dir (config.yaml), seed."""
    import torch
    from accelerate.utils import set_seed

    cfg = config if isinstance(config, TrainConfig) else validate(TrainConfig, dict(config))
    t_start = time.perf_counter()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    if cfg.fit_gpu:  # the planner sits above train (it traces this code): it fits the config first
        raise ConfigError(f"fit_gpu={cfg.fit_gpu!r}: resolve it before training with "
                          "soritune.plan.fit.run_fitted(cfg) (or fit_train_config); `soritune train --fit-gpu` does")
    acc = make_accelerator(cfg)
    try:
        run_dir, ckpt = prepare_run_dir(cfg, acc)
        set_seed(cfg.seed)
    except BaseException:
        _reset_accelerate(acc)
        raise
    compute_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(str(acc.mixed_precision))
    return RunContext(cfg, acc, run_dir, ckpt, compute_dtype, t_start)


def fit(ctx: RunContext, built: BuiltModel, module, progress=None) -> Fitted:
    """Train `module` (a loss over `built.model`, e.g. WhisperLoss or distillation's DistillLoss) on
    ctx.cfg.train with the loop, schedule, checkpoints and dev CER of soritune.train; the best
    checkpoint's weights are loaded back into built.model when config.export says so."""
    import torch

    cfg, acc, run_dir, ckpt = ctx.cfg, ctx.accelerator, ctx.run_dir, ctx.checkpoint
    tok = built.processor.tokenizer
    dataset = ManifestDataset(cfg.train, tok, language=cfg.language, task=cfg.task, text_field=cfg.text_field,
                              max_audio_s=cfg.max_audio_s, max_label_tokens=cfg.max_label_tokens,
                              timestamp_probability=cfg.timestamp_probability,
                              prompt_probability=cfg.prompt_probability, seed=cfg.seed)
    if acc.is_main_process:
        write_jsonl(run_dir / "skipped.jsonl", dataset.skipped)
    if len(dataset) == 0:
        raise ConfigError(f"train: no usable utterance in {cfg.train} ({dataset.skipped_counts()}; see skipped.jsonl)")
    if dataset.skipped_fraction() > cfg.max_skip_fraction:
        raise ConfigError(f"train: {dataset.skipped_fraction():.0%} of the rows in {cfg.train} have missing or "
                          f"unreadable audio (max_skip_fraction {cfg.max_skip_fraction:g}; "
                          f"{dataset.skipped_counts()}; see {run_dir / 'skipped.jsonl'})")
    collator = WhisperCollator(built.processor.feature_extractor, pad_token_id=tok.convert_tokens_to_ids("<|endoftext|>"),
                               dynamic_length=cfg.dynamic_length, bucket_s=cfg.length_bucket_s,
                               augment=augmenter(cfg.augment))
    plan = DataPlan(dataset, collator, batch_size=cfg.batch_size, world=acc.num_processes, rank=acc.process_index,
                    seed=cfg.seed, group_by_length=cfg.group_by_length, num_workers=cfg.num_workers)
    dev = dev_rows(cfg.dev, cfg.text_field, cfg.eval_max_utts) if cfg.dev else []
    resume_step = int(read_json(ckpt / "state.json")["step"]) if ckpt else (0 if cfg.resume else None)
    metrics = MetricsLog(run_dir / "metrics.jsonl", enabled=acc.is_main_process, resume_step=resume_step,
                         tensorboard_dir=(run_dir / "tb") if cfg.tensorboard else None)
    trainer = Trainer(config=cfg, accelerator=acc, built=built, plan=plan, module=module, dev_rows=dev,
                      run_dir=run_dir, metrics=metrics, progress=progress)
    if ckpt is not None:
        trainer.restore(ckpt)
    if acc.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(acc.device)
    state = trainer.train(resumed=ckpt is not None)
    metrics.close()
    exported_step = state.step
    best_dir = run_dir / CKPT_DIR / checkpoint_name(state.best_step) if state.best_step is not None else None
    if (cfg.export == "best" and best_dir is not None and state.best_step != state.step
            and (best_dir / "state.json").exists()):
        load_trainable_state(built.model, load_trainable(best_dir))
        exported_step = state.best_step
    return Fitted(state, trainer, dataset, dev, exported_step, resume_step)


def run(config: TrainConfig | dict, progress=None) -> TrainResult:
    """Train config.model on config.train; see TrainConfig for every field. progress(event) gets
    {"event": "start"|"step"|"eval"|"end", "step", ...} dicts on the main process.

    prepare(cfg) + build_model + fit(ctx, built, WhisperLoss) + export: distillation composes the
    same prepare and fit with its own loss."""
    from soritune.train.efficiency import EncoderCache, WhisperLoss  # torch at import

    with prepare(config) as ctx:
        cfg, acc, run_dir = ctx.cfg, ctx.accelerator, ctx.run_dir
        built = build_model(cfg, device=str(acc.device), compute_dtype=ctx.compute_dtype)
        cache = EncoderCache() if cfg.cache_encoder else None
        chunk = cfg.chunked_ce if cfg.chunked_ce is not None else (1024 if acc.device.type == "cuda" else 0)
        module = WhisperLoss(built.model, dynamic_length=cfg.dynamic_length, chunk_tokens=chunk, cache=cache)
        fitted = fit(ctx, built, module, progress)
        state, trainer, dataset, dev = fitted.state, fitted.trainer, fitted.dataset, fitted.dev
        weights_dir = merged_dir = None
        if acc.is_main_process:
            weights_dir = export(built.model, built.processor, run_dir, cfg)
            if cfg.merge:
                merged_dir = export_merged(cfg, weights_dir, run_dir)
            if trainer.last_dev:
                write_jsonl(run_dir / "dev_predictions.jsonl", trainer.last_dev)
        acc.wait_for_everyone()
        peak, reserved, rss = _memory(acc)
        result = TrainResult(
            run_dir=str(run_dir), status=state.stopped or "completed", message=state.message, steps=state.step,
            total_steps=trainer.total_steps, samples=state.samples,
            samples_per_s=trainer.samples_timed / trainer.train_wall_s if trainer.train_wall_s > 0 else 0.0,
            train_wall_s=trainer.train_wall_s, total_wall_s=time.perf_counter() - ctx.t_start,
            peak_mem_gb=peak, peak_mem_reserved_gb=reserved, peak_rss_gb=rss,
            final_loss=(sum(state.recent_losses) / len(state.recent_losses)) if state.recent_losses else None,
            initial_dev_cer=state.initial_cer, best_dev_cer=state.best_cer, best_step=state.best_step,
            last_dev_cer=state.last_cer, exported_step=fitted.exported_step,
            weights_dir=str(weights_dir) if weights_dir else None, merged_dir=str(merged_dir) if merged_dir else None,
            trainable_params=built.trainable_params, total_params=built.total_params,
            n_train=len(dataset), n_skipped=len(dataset.skipped), skipped_by_reason=dataset.skipped_counts(),
            n_dev=len(dev), resumed_from_step=fitted.resume_step if ctx.checkpoint else None,
            world_size=acc.num_processes, device=_device_name(acc), mixed_precision=str(acc.mixed_precision),
            dynamic_length=cfg.dynamic_length, chunked_ce=chunk, encoder_cache_hits=cache.hits if cache else None,
            versions=versions(),
        )
        if acc.is_main_process:
            write_run(run_dir, None, result, stage="train")  # config.yaml: written before training (resume)
        return result
