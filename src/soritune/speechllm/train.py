"""Speech-LLM training stages: 1 = projector only (encoder and LLM frozen), 2 = projector + LoRA on the LLM.

Run directory: config.yaml (this stage's resolved config), model/ (SpeechLLM.save), metrics.jsonl,
summary.json. Stage 2 starts from a stage-1 run with `init=RUN_DIR`, and can replay stage-1 data
(`replay`, `replay_fraction`) as the study's curriculum did. Optimizer and schedule are soritune's
(`train.loop.make_optimizer/make_scheduler`); the loss is cross-entropy on the response tokens only.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from soritune.config import make_run_dir, save_config
from soritune.errors import SoritunError
from soritune.jsonio import write_json
from soritune.speechllm.config import StageTrainConfig
from soritune.speechllm.data import load_clip, read_examples
from soritune.speechllm.distill import HiddenStateTeacher, load_teacher, self_distillation_loss, teacher_kl
from soritune.speechllm.model import response_loss
from soritune.train.checkpoint import apply_retention, latest_checkpoint, load_checkpoint, save_checkpoint
from soritune.train.loop import make_optimizer, make_scheduler
from soritune.train.metrics_log import MetricsLog

Progress = Callable[[dict], None]


@dataclass
class StageResult:
    run_dir: str
    stage: int
    steps: int
    losses: list[float]
    first_loss: float
    last_loss: float
    train_s: float
    samples_per_s: float
    trainable_params: int
    examples: int
    audio_chunks: int  # encoder passes over all clips seen (long clips take several)
    truncated_audio_s: float  # always 0: long audio is chunked, never cut
    model_dir: str
    extra: dict = field(default_factory=dict)


def _freeze_for_stage(model, stage: int) -> None:
    """Stage 1: only the projector learns. Stage 2: projector + LoRA weights (base LLM frozen), and the
    encoder's LoRA when it has one."""
    if stage == 2:
        model.enable_lora()
    for name, p in model.llm.named_parameters():
        p.requires_grad_(stage == 2 and "lora_" in name)
    for p in model.projector.parameters():
        p.requires_grad_(True)
    model.encoder.freeze(model.config.freeze_encoder, train_lora=stage == 2)


class _Batches:
    """Shuffled batches per epoch (seeded); stage-2 batches mix in replay rows at replay_fraction.
    A frozen encoder's outputs are cached per clip up to MAX_CACHE_BYTES (then encoded every time)."""

    MAX_CACHE_BYTES = 2 * 1024 ** 3

    def __init__(self, rows: list[dict], replay: list[dict], batch_size: int, fraction: float, seed: int):
        self.rows, self.replay, self.bs, self.fraction = rows, replay, batch_size, fraction
        self.rng = np.random.default_rng(seed)
        self.order: list[int] = []
        self.audio: dict[str, np.ndarray] = {}
        self.encoded: dict[str, list] = {}
        self.cached_bytes = 0

    def clip(self, row: dict) -> np.ndarray:
        if row["id"] not in self.audio:
            self.audio[row["id"]] = load_clip(row)
        return self.audio[row["id"]]

    def encoded_clips(self, model, batch: list[dict]) -> list[list] | None:
        """Encoder outputs of a frozen encoder, computed once per clip (None: the encoder trains)."""
        if model.encoder.trains or self.cached_bytes > self.MAX_CACHE_BYTES:
            return None
        todo = [r for r in batch if r["id"] not in self.encoded]
        if todo:
            import torch

            with torch.no_grad():
                for row, enc in zip(todo, model.encode_clips([self.clip(r) for r in todo])):
                    self.encoded[row["id"]] = enc
                    self.cached_bytes += sum(c.features.numel() * c.features.element_size() for c in enc)
        return [self.encoded[r["id"]] for r in batch]

    def state(self) -> dict:
        return {"order": [int(i) for i in self.order], "rng": self.rng.bit_generator.state}

    def restore(self, state: dict) -> None:
        self.order = list(state["order"])
        self.rng.bit_generator.state = state["rng"]

    def next(self) -> list[dict]:
        n_replay = int(round(self.bs * self.fraction)) if self.replay else 0
        out = []
        for _ in range(self.bs - n_replay):
            if not self.order:
                self.order = list(self.rng.permutation(len(self.rows)))
            out.append(self.rows[self.order.pop()])
        out += [self.replay[i] for i in self.rng.integers(0, len(self.replay), n_replay)] if n_replay else []
        return out


def run_stage(cfg: StageTrainConfig, *, model=None, progress: Progress | None = None) -> StageResult:
    """Train one stage and save the model; `model` reuses a SpeechLLM already in memory."""
    import torch

    from soritune.speechllm.model import SpeechLLM

    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    rows = read_examples(cfg.data)
    replay = read_examples(cfg.replay) if cfg.replay else []
    if cfg.replay and cfg.stage != 2:
        raise SoritunError("replay: stage-1 replay belongs to stage 2 (set stage: 2)")
    run = make_run_dir(cfg.out)
    save_config(cfg, run / "config.yaml")
    if model is None:
        model = SpeechLLM.load(Path(cfg.init) / "model") if cfg.init else SpeechLLM(cfg.model)
    _freeze_for_stage(model, cfg.stage)
    teacher = load_teacher(cfg.teacher, model) if cfg.teacher and cfg.distill_weight else None
    hidden_teacher = (HiddenStateTeacher(cfg.encoder_teacher, model, seed=cfg.seed)
                      if cfg.encoder_teacher and cfg.hidden_mse_weight else None)
    named = named_trainable(model)
    if hidden_teacher is not None:  # the student -> teacher width map trains with the stage (not saved)
        named.update({f"encoder_teacher_map.{k}": p for k, p in hidden_teacher.map.named_parameters()})
    params = list(named.values())
    optimizer = make_optimizer("adamw", params, cfg.lr, cfg.weight_decay)
    scheduler = make_scheduler(cfg.schedule, optimizer, cfg.steps, cfg.warmup_steps)
    batches = _Batches(rows, replay, cfg.batch_size, cfg.replay_fraction, cfg.seed)
    accelerator = _accelerator() if cfg.save_every or cfg.resume else None
    losses, chunks, truncated, samples, start = [], 0, 0.0, 0, 0
    ckpt = latest_checkpoint(run) if cfg.resume else None
    if ckpt is not None:
        tensors, state = load_checkpoint(ckpt, accelerator, optimizer=optimizer, scheduler=scheduler)
        _restore_trainable(named, tensors, ckpt)
        batches.restore(state["data"])
        start, losses, chunks, samples = state["step"], state["losses"], state["audio_chunks"], state["samples"]
    log = MetricsLog(run / "metrics.jsonl", resume_step=start if ckpt is not None else None)
    model.train(True)
    t0 = time.perf_counter()
    with model.remembering_drafts():  # each clip's Whisper draft decoded once (config.draft)
        for step in range(start + 1, cfg.steps + 1):
            batch = batches.next()
            clips = [batches.clip(r) for r in batch]
            encoded = model.encode_clips(clips) if hidden_teacher else batches.encoded_clips(model, batch)
            out = model.build_inputs(clips, [r["prompt"] for r in batch], [r["response"] for r in batch], encoded)
            logits, targets = model.response_logits(out)
            loss = cfg.ce_weight * response_loss(logits, targets)
            if cfg.self_distill_weight:
                loss = loss + cfg.self_distill_weight * self_distillation_loss(model, batch, logits, targets,
                                                                               cfg.distill_temperature)
            if teacher is not None:
                loss = loss + cfg.distill_weight * teacher_kl(teacher, clips, batch, logits, targets,
                                                              cfg.distill_temperature)
            if hidden_teacher is not None:
                loss = loss + cfg.hidden_mse_weight * hidden_teacher.loss(clips, encoded)
            if not torch.isfinite(loss):
                raise SoritunError(f"stage {cfg.stage}: loss became {loss.item()} at step {step}; lower lr ({cfg.lr})")
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            losses.append(float(loss.item()))
            chunks += sum(a.n_chunks for a in out["audio"])
            truncated += sum(a.truncated_s for a in out["audio"])
            samples += len(batch)
            if step % cfg.log_every == 0 or step == cfg.steps:
                row = {"step": step, "loss": losses[-1], "lr": scheduler.get_last_lr()[0], "samples": samples}
                log.write(row)
                if progress:
                    progress({**row, "total": cfg.steps})
            if cfg.save_every and step % cfg.save_every == 0 and step < cfg.steps:
                save_checkpoint(accelerator, run, step, trainable={k: v.detach().cpu() for k, v in named.items()},
                                optimizer=optimizer, scheduler=scheduler,
                                state={"losses": losses, "audio_chunks": chunks, "samples": samples,
                                       "data": batches.state()})
                apply_retention(run, cfg.keep_last, None)
    train_s = time.perf_counter() - t0
    if not losses:
        raise SoritunError(f"stage {cfg.stage}: no steps ran (steps={cfg.steps}, resumed at {start})")
    model.train(False)
    model_dir = model.save(run / "model")
    result = StageResult(run_dir=str(run), stage=cfg.stage, steps=cfg.steps, losses=losses, first_loss=losses[0],
                         last_loss=losses[-1], train_s=round(train_s, 2),
                         samples_per_s=round(samples / max(train_s, 1e-9), 3),
                         trainable_params=sum(p.numel() for p in params), examples=len(rows), audio_chunks=chunks,
                         truncated_audio_s=truncated, model_dir=str(model_dir))
    write_json(run / "summary.json", result)
    return result


def named_trainable(model) -> dict:
    """Trainable tensors by a stable name (projector., llm., encoder.), for checkpoints."""
    parts = (("projector", model.projector), ("llm", model.llm), ("encoder", model.encoder.module))
    return {f"{prefix}.{n}": p for prefix, mod in parts for n, p in mod.named_parameters() if p.requires_grad}


def _restore_trainable(named: dict, tensors: dict, ckpt: Path) -> None:
    import torch

    if set(named) != set(tensors):
        diff = sorted(set(named) ^ set(tensors))[:3]
        raise SoritunError(f"{ckpt}: its trainable tensors do not match this stage's model (e.g. {diff}); "
                           "resume with the config the run started with")
    with torch.no_grad():
        for k, p in named.items():
            p.copy_(tensors[k])


def _accelerator():
    from accelerate import Accelerator

    return Accelerator(cpu=True)
