"""The training loop on `accelerate` (so `accelerate launch` runs it under DDP on many devices).

One optimizer step consumes `grad_accum` global batches of `batch_size x processes` utterances,
each process taking its contiguous share. The loss is the token cross-entropy summed over the step's
micro-batches and divided by the step's token count over all processes, so N processes with batch
B give the same update as one process with batch N x B, and splitting a micro-batch (auto-batch on
out-of-memory) changes nothing but peak memory.

Data order is a pure function of (seed, epoch) and the step counter is the data position, so a run
resumed from a checkpoint replays exactly what the uninterrupted run would have done.
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from soritune.errors import SoritunError, TrainOOMError

Progress = Callable[[dict], None]



@dataclass
class LoopState:
    step: int = 0
    micro_split: int = 1
    best_cer: float | None = None
    best_step: int | None = None
    bad_evals: int = 0
    samples: int = 0
    initial_cer: float | None = None
    last_cer: float | None = None
    recent_losses: list[float] = field(default_factory=list)
    stopped: str | None = None  # early_stopping | nan | None
    message: str = ""


class BatchSource:
    """Map-style dataset whose items are whole micro-batches: spec = (indices, pad_frames, epoch).

    With an augmenting collator, utterance i of epoch e is augmented from the generator seeded by
    (seed, e, i): the same in any batch, process, worker or resumed run."""

    def __init__(self, dataset, collator, seed: int = 0):
        self.dataset, self.collator, self.seed = dataset, collator, seed

    def __getitem__(self, spec):
        indices, pad_frames, epoch = spec
        items = [self.dataset[i] for i in indices]
        augment = getattr(self.collator, "augment", None)
        if augment is None:
            return self.collator(items, pad_frames=pad_frames)
        rngs = [augment.rng(self.seed, epoch, i) for i in indices]
        return self.collator(items, pad_frames=pad_frames, augment_rngs=rngs)

    def __len__(self) -> int:  # only for DataLoader's sake
        return len(self.dataset)


class DataPlan:
    """Global length-grouped batches per epoch; this process's share; a stream from any position."""

    def __init__(self, dataset, collator, *, batch_size: int, world: int, rank: int, seed: int,
                 group_by_length: bool, num_workers: int = 0):
        self.dataset, self.collator = dataset, collator
        self.frames = np.array([collator.frames_for(int(round(d * 16000))) for d in dataset.durations_s])
        self.global_batch, self.world, self.rank = batch_size * world, world, rank
        self.seed, self.group_by_length, self.num_workers = seed, group_by_length, num_workers
        self._cache: tuple[int, list] | None = None
        self.per_epoch = len(self.epoch(0))
        if self.per_epoch == 0:
            raise SoritunError(f"train: {len(dataset)} usable utterances cannot fill one batch across {world} processes")

    def epoch(self, e: int) -> list[tuple[tuple[int, ...], int]]:
        if self._cache and self._cache[0] == e:
            return self._cache[1]
        from soritune.data.dataset import length_grouped_batches

        specs = []
        for batch in length_grouped_batches(self.frames, self.global_batch, self.seed, e,
                                            group_by_length=self.group_by_length):
            if len(batch) < self.world:  # a tail too small to give every process an utterance
                continue
            share = np.array_split(np.asarray(batch), self.world)[self.rank]
            specs.append((tuple(int(i) for i in share), int(self.frames[batch].max())))
        self._cache = (e, specs)
        return specs

    def stream(self, position: int) -> Iterator[dict]:
        import torch
        from torch.utils.data import DataLoader

        while True:
            e, i = divmod(position, self.per_epoch)
            specs = self.epoch(e)[i:]
            if hasattr(self.dataset, "set_epoch"):  # targets drawn per epoch (soritune.data.labels)
                self.dataset.set_epoch(e)
            loader = DataLoader(BatchSource(self.dataset, self.collator, self.seed), batch_size=None,
                                sampler=[(*spec, e) for spec in specs],
                                num_workers=self.num_workers, generator=torch.Generator().manual_seed(self.seed + e))
            for batch in loader:
                yield batch
            position = (e + 1) * self.per_epoch


def make_optimizer(name: str, params, lr: float, weight_decay: float):
    import torch

    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    try:
        import bitsandbytes as bnb
    except ImportError as e:
        raise SoritunError(f"optimizer {name} needs bitsandbytes: pip install 'soritune[quant]'") from e
    cls = {"adamw8bit": bnb.optim.AdamW8bit, "paged_adamw8bit": bnb.optim.PagedAdamW8bit,
           "paged_adamw": bnb.optim.PagedAdamW}[name]
    return cls(params, lr=lr, weight_decay=weight_decay)


def make_scheduler(name: str, optimizer, total_steps: int, warmup_steps: int):
    from transformers import get_scheduler

    kind = {"linear": "linear", "cosine": "cosine", "constant": "constant_with_warmup"}[name]
    return get_scheduler(kind, optimizer, num_warmup_steps=warmup_steps, num_training_steps=total_steps)


def is_oom(exc: BaseException) -> bool:
    import torch

    oom_types = tuple(t for t in (getattr(torch, "OutOfMemoryError", None), getattr(torch.cuda, "OutOfMemoryError", None)) if t)
    return isinstance(exc, oom_types) or (isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower())


def split_batch(batch: dict, parts: int) -> list[dict]:
    n = len(batch["ids"])
    if parts <= 1 or n <= 1:
        return [batch]
    bounds = np.array_split(np.arange(n), min(parts, n))
    out = []
    for idx in bounds:
        lo, hi = int(idx[0]), int(idx[-1]) + 1
        out.append({k: v[lo:hi] for k, v in batch.items()})
    return out


class Trainer:
    """Owns the prepared module/optimizer/scheduler and runs steps, evaluation and checkpoints."""

    def __init__(self, *, config, accelerator, built, plan: DataPlan, module, dev_rows: list[dict],
                 run_dir: Path, metrics, progress: Progress | None = None):
        self.cfg, self.acc, self.built, self.plan = config, accelerator, built, plan
        self.run_dir, self.metrics, self.progress = run_dir, metrics, progress
        self.dev_rows = dev_rows
        self.params = [p for p in built.model.parameters() if p.requires_grad]
        optimizer = make_optimizer(config.optimizer, self.params, config.resolved_lr(), config.weight_decay)
        steps_per_epoch = math.ceil(plan.per_epoch / config.grad_accum)
        self.total_steps = config.max_steps or max(1, math.ceil(config.epochs * plan.per_epoch / config.grad_accum))
        warmup = config.warmup_steps if config.warmup_steps is not None else int(config.warmup_ratio * self.total_steps)
        self.scheduler = make_scheduler(config.schedule, optimizer, self.total_steps, warmup)
        self.module = accelerator.prepare_model(module, device_placement=False)
        self.optimizer = accelerator.prepare_optimizer(optimizer, device_placement=False)
        self.eval_every = config.eval_every or steps_per_epoch
        self.save_every = config.save_every or self.eval_every
        self.state = LoopState()
        self.train_wall_s = 0.0
        self.samples_timed = 0
        self.last_dev: list[dict] = []

    # ---- pieces ---------------------------------------------------------------------------
    def whisper(self):
        from soritune.train.efficiency import whisper_of

        return whisper_of(self.acc.unwrap_model(self.module).model)

    def _sum(self, values: list[float]) -> list[float]:
        import torch

        t = torch.tensor(values, dtype=torch.float64, device=self.acc.device)
        return self.acc.reduce(t, "sum").tolist() if self.acc.num_processes > 1 else t.tolist()

    def _to_device(self, mb: dict) -> dict:
        return {k: (v.to(self.acc.device) if hasattr(v, "to") else v) for k, v in mb.items()}

    def _accumulate(self, window: list[dict], scale: float) -> float:
        micro = [m for b in window for m in split_batch(b, self.state.micro_split)]
        loss_sum = 0.0
        for k, mb in enumerate(micro):
            sync = contextlib.nullcontext() if k == len(micro) - 1 else self.acc.no_sync(self.module)
            with sync:
                out = self.module(**self._to_device(mb))
                self.acc.backward(out * scale)
            loss_sum += float(out.detach())
        return loss_sum

    def _oom(self, window: list[dict], exc: BaseException) -> None:
        import torch

        self.optimizer.zero_grad(set_to_none=True)
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        batch = max(len(b["ids"]) for b in window)
        if self.state.micro_split >= batch:
            raise TrainOOMError("CUDA out of memory even at 1 utterance per micro-batch; try "
                                "gradient_checkpointing=true, method=qlora4 or a smaller model") from exc
        if self.cfg.auto_batch:
            self.state.micro_split *= 2
            return
        split, found = self.state.micro_split * 2, False
        while not found and split <= 2 * batch:  # find what fits, without stepping
            try:
                first = split_batch(window[0], split)[0]
                self.acc.backward(self.module(**self._to_device(first)))
                found = True
            except Exception as e:  # noqa: BLE001
                if not is_oom(e):
                    raise
                split *= 2
            self.optimizer.zero_grad(set_to_none=True)
        fits = max(1, math.ceil(batch / split))
        if not found:
            raise TrainOOMError("CUDA out of memory even at 1 utterance per micro-batch; try "
                                "gradient_checkpointing=true, method=qlora4 or a smaller model") from exc
        raise TrainOOMError(
            f"CUDA out of memory at batch size {batch} per device; batch size {fits} fits: rerun with "
            f"--batch-size {fits} --grad-accum {self.cfg.grad_accum * math.ceil(batch / fits)} (same effective "
            f"batch), or add --auto-batch to split batches automatically") from exc

    def optimizer_step(self, window: list[dict]) -> tuple[float, float | None, int]:
        """One update from `window`; returns (mean token loss over all processes, grad norm, samples)."""
        tokens = sum(int((b["labels"] != -100).sum()) for b in window)
        samples = sum(len(b["ids"]) for b in window)
        tokens_all, samples_all = self._sum([tokens, samples])
        scale = self.acc.num_processes / max(1.0, tokens_all)
        while True:
            try:
                loss_sum = self._accumulate(window, scale)
                break
            except Exception as e:  # noqa: BLE001
                if not is_oom(e):
                    raise
                self._oom(window, e)
        loss = self._sum([loss_sum])[0] / max(1.0, tokens_all)
        if not math.isfinite(loss):
            self.optimizer.zero_grad(set_to_none=True)
            return loss, None, int(samples_all)
        norm = None
        if self.cfg.max_grad_norm > 0:
            total = self.acc.clip_grad_norm_(self.params, self.cfg.max_grad_norm)
            norm = float(total) if total is not None else None
            if norm is not None and not math.isfinite(norm) and self.acc.scaler is None:
                self.optimizer.zero_grad(set_to_none=True)
                return float("nan"), norm, int(samples_all)
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        return loss, norm, int(samples_all)

    def evaluate(self) -> float | None:
        """Dev CER (main process decodes; every process gets the number)."""
        if not self.dev_rows:
            return None
        from accelerate.utils import broadcast_object_list

        from soritune.train.dev_eval import score_dev

        result = [None]
        if self.acc.is_main_process:
            score = score_dev(self.whisper(), self.built.processor, self.dev_rows, text_field=self.cfg.text_field,
                              language=self.cfg.language, task=self.cfg.task, batch_size=self.cfg.eval_batch_size,
                              max_new_tokens=self.cfg.eval_max_new_tokens, device=str(self.acc.device),
                              autocast=self.acc.autocast, input=self.cfg.eval_input,
                              bucket_s=self.cfg.length_bucket_s)
            self.last_dev = score.rows
            result = [score.cer]
            self.metrics.write({"step": self.state.step, "dev_cer": score.cer, "n_dev": score.n_utts,
                                "dev_input": self.cfg.eval_input,
                                "dev_wall_s": round(score.wall_s, 3)})
        if self.acc.num_processes > 1:
            broadcast_object_list(result)
        return result[0]

    def save(self) -> None:
        from soritune.train.adapters import trainable_state
        from soritune.train.checkpoint import apply_retention, save_checkpoint

        st = {k: v for k, v in asdict(self.state).items()}
        save_checkpoint(self.acc, self.run_dir, self.state.step, trainable=trainable_state(self.built.model),
                        optimizer=self.optimizer, scheduler=self.scheduler, state=st, scaler=self.acc.scaler)
        if self.acc.is_main_process:
            apply_retention(self.run_dir, self.cfg.keep_last, self.state.best_step)

    def restore(self, path: Path) -> None:
        from soritune.train.adapters import load_trainable_state
        from soritune.train.checkpoint import load_checkpoint

        trainable, st = load_checkpoint(path, self.acc, optimizer=self.optimizer, scheduler=self.scheduler,
                                        scaler=self.acc.scaler)
        load_trainable_state(self.built.model, trainable)
        known = LoopState.__dataclass_fields__
        self.state = LoopState(**{k: v for k, v in st.items() if k in known})

    def _emit(self, event: dict) -> None:
        if self.progress is not None and self.acc.is_main_process:
            self.progress(event)

    # ---- the loop -------------------------------------------------------------------------
    def _after_eval(self, cer: float | None) -> None:
        s = self.state
        s.last_cer = cer
        if cer is None or not math.isfinite(cer):
            return
        if s.best_cer is None or cer < s.best_cer - 1e-9:
            s.best_cer, s.best_step, s.bad_evals = cer, s.step, 0
        else:
            s.bad_evals += 1
        self._emit({"event": "eval", "step": s.step, "dev_cer": cer, "best_cer": s.best_cer})

    def train(self, resumed: bool) -> LoopState:
        s = self.state
        if not resumed and self.dev_rows and self.cfg.eval_at_start:
            s.initial_cer = self.evaluate()
            self._emit({"event": "eval", "step": 0, "dev_cer": s.initial_cer, "best_cer": None})
        self._emit({"event": "start", "step": s.step, "total_steps": self.total_steps,
                    "trainable_params": self.built.trainable_params, "total_params": self.built.total_params})
        stream = self.plan.stream(s.step * self.cfg.grad_accum)
        window_loss: list[float] = []
        while s.step < self.total_steps:
            t0 = time.perf_counter()
            window = [next(stream) for _ in range(self.cfg.grad_accum)]
            lr = self.scheduler.get_last_lr()[0]  # the rate this update uses
            loss, norm, samples = self.optimizer_step(window)
            if not math.isfinite(loss):
                s.stopped = "nan"
                s.message = (f"loss is {loss} at step {s.step + 1} (not finite); training stopped before that "
                             f"update, the weights are those after step {s.step}; the last good checkpoint is kept")
                break
            self.train_wall_s += time.perf_counter() - t0
            self.samples_timed += samples
            s.step += 1
            s.samples += samples
            s.recent_losses = (s.recent_losses + [loss])[-10:]
            window_loss.append(loss)
            if s.step % self.cfg.log_every == 0 or s.step == self.total_steps or s.step == 1:
                self.metrics.write({"step": s.step, "epoch": round(s.step * self.cfg.grad_accum / self.plan.per_epoch, 4),
                                    "loss": float(np.mean(window_loss)), "lr": lr, "grad_norm": norm,
                                    "samples": s.samples, "micro_split": s.micro_split})
                window_loss = []
            self._emit({"event": "step", "step": s.step, "total_steps": self.total_steps, "loss": loss, "lr": lr})
            evaluated = bool(self.dev_rows) and (s.step % self.eval_every == 0 or s.step == self.total_steps)
            if evaluated:
                self._after_eval(self.evaluate())
            if evaluated or s.step % self.save_every == 0 or s.step == self.total_steps:
                self.save()
            patience = self.cfg.early_stopping_patience
            if evaluated and patience and s.bad_evals >= patience:
                s.stopped = "early_stopping"
                s.message = f"no better dev CER in {patience} evaluations; best {s.best_cer:.4f} at step {s.best_step}"
                break
        self._emit({"event": "end", "step": s.step, "stopped": s.stopped})
        return s
