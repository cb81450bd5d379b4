"""Lottery-ticket pruning of the frozen base under LoRA: iterative magnitude pruning with rewinding.

    from soritune.compress.prune_lottery import LotteryConfig, run
    result = run(LotteryConfig(model="bundled:whisper-base", train="data/train.jsonl", sparsity=0.5,
                               rounds=3, out="lth/", train_overrides={"max_steps": 200}))

Round 0 trains LoRA on the dense frozen base (this is also the unpruned LoRA baseline; or takes
`round0_adapter`, a run already trained that way, e.g. the LoRA model being compressed). Each of
the `rounds` pruning rounds then:
1. scores the surviving base weights by magnitude - of the effective weight W + BA the last
   round trained (`score=merged`, default) or of the base weight alone (`score=base`);
2. prunes so that the cumulative sparsity is 1 - (1 - rate)^round exactly (p% of what remains);
3. rewinds the surviving base weights to the pre-trained values (`rewind_step=0`) or to their
   effective values at step k of round 0 (W + B_k A_k, late rewinding), zeroes the pruned ones;
4. retrains a fresh LoRA on that frozen, masked base with `soritune.train.run` (same budget).
`protect_adapted` keeps the base weights of adapter-carrying modules out of pruning. A control
run trains the same budget on a random mask of the same per-matrix sparsity.

When no prunable weight carries an adapter (`protect_adapted`, or modules apart from the LoRA
targets) and the survivors are rewound to W0, or with `score=base`, every round ranks the same |W0|:
the final mask is the one-shot magnitude mask and `rounds=1` gives the same ticket in less time
(reported as `details.rounds_reduce_to_one_shot`; tested).

OUT/merged/ is the deployable ticket: the final adapter merged into the masked base, the masks
re-applied after the merge (a merge adds BA everywhere) and stored in OUT/merged/masks.safetensors.
OUT/adapter/ + OUT/base/ are the unmerged pair; OUT/round-N/ the training runs;
OUT/summary.json (lottery_report.json links to it) the per-round sparsity and CER, with the control
and the baseline.
"""

from __future__ import annotations

import math
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Literal

from pydantic import Field, model_validator

from soritune.config import StageConfig, validate
from soritune.errors import CompressError
from soritune.infer.options import MAX_NEW_TOKENS
from soritune.models import load
from soritune.rundir import write_run
from soritune.train.config import TrainOverrides

LinearName = Literal["q_proj", "k_proj", "v_proj", "out_proj", "fc1", "fc2"]


class LotteryConfig(StageConfig):
    """Settings of `soritune prune --method lottery`."""

    model: str = Field(description="pre-trained model spec (the frozen base)")
    adapter: str | None = Field(None, description="PEFT adapter merged into the base first (the merged weights are then 'pre-trained')")
    out: Path = Field(description="output directory")
    train: str = Field(description="training manifest for every round's LoRA")
    dev: str | None = Field(None, description="dev manifest (train's dev CER; default eval set)")
    eval_manifest: str | None = Field(None, description="manifest for each round's CER (default: dev)")
    eval_limit: int | None = Field(100, ge=1, description="utterances scored per round")
    evaluate: bool = Field(True, description="score each round's merged model (off when a caller scores them itself)")
    rounds: int = Field(3, ge=1, le=20, description="pruning rounds (each followed by retraining)")
    sparsity: float | None = Field(None, gt=0, lt=1, description="final sparsity; sets rate = 1 - (1 - sparsity)^(1/rounds)")
    rate: float | None = Field(None, gt=0, lt=1, description="fraction of the remaining weights pruned per round")
    schedule: list[float] | None = Field(None, description="explicit cumulative sparsity after each round (sets rounds; e.g. a sweep)")
    scope: Literal["global", "layer"] = Field("global", description="rank all matrices together or each on its own")
    score: Literal["merged", "base"] = Field("merged", description="magnitude of W + BA (trained effective weight) or of W")
    modules: list[LinearName] = Field(default_factory=lambda: ["q_proj", "k_proj", "v_proj", "out_proj", "fc1", "fc2"],
                                      description="linear layers whose base weights may be pruned")
    side: Literal["encoder", "decoder", "both"] = Field("both", description="stack(s) whose base weights may be pruned")
    protect_adapted: bool = Field(False, description="never prune base weights of modules that carry an adapter")
    rewind_step: int = Field(0, ge=0, description="0 = rewind to pre-trained values; k = to W + B_k A_k of round 0")
    round0_adapter: str | None = Field(None, description="a LoRA adapter already trained on this base with these train_overrides: "
                                                   "used as round 0 instead of training it again (figures from its run's summary.json)")
    control: bool = Field(True, description="also train a random mask of the final per-matrix sparsity")
    train_overrides: TrainOverrides = Field(default_factory=dict, description="TrainConfig fields for every round (method, lora_r, target, max_steps, lr, batch_size, ...)")
    keep_intermediate: bool = Field(False, description="keep each round's masked base directory (large)")
    batch_size: int = Field(8, ge=1, description="decoding batch size for the CER checks")
    max_new_tokens: int = Field(128, ge=1, le=MAX_NEW_TOKENS, description="decoding token limit for the CER checks")
    seed: int = Field(0, description="seed for tiny:/random: specs, LoRA initialisation and the control mask")

    @model_validator(mode="after")
    def _rate_or_sparsity(self):
        if self.schedule is not None:
            if self.sparsity is not None or self.rate is not None:
                raise ValueError("schedule sets every round's sparsity; leave sparsity and rate unset")
            if not self.schedule or any(not 0 < x < 1 for x in self.schedule) or sorted(set(self.schedule)) != list(self.schedule):
                raise ValueError(f"schedule: {self.schedule} must be strictly increasing values in (0, 1)")
            self.__dict__["rounds"] = len(self.schedule)
        elif self.sparsity is None and self.rate is None:
            self.__dict__["sparsity"] = 0.5
        if self.sparsity is not None and self.rate is not None:
            raise ValueError("give sparsity (final) or rate (per round), not both")
        if self.round0_adapter and self.rewind_step:
            raise ValueError("rewind_step needs round 0's checkpoints: train round 0 here (leave round0_adapter unset)")
        bad = {"model", "train", "out", "dev", "resume", "overwrite", "merge", "seed"} & set(self.train_overrides)
        if bad:
            raise ValueError(f"train_overrides may not set {sorted(bad)} (the lottery run sets them)")
        return self

    def per_round_rate(self) -> float | None:
        if self.schedule is not None:
            return None
        return self.rate if self.rate is not None else 1.0 - (1.0 - self.sparsity) ** (1.0 / self.rounds)

    def sparsity_after(self, r: int) -> float:
        if self.schedule is not None:
            return self.schedule[r - 1] if r > 0 else 0.0
        if r >= self.rounds and self.sparsity is not None:
            return self.sparsity  # exactly the requested final sparsity, free of rounding in the rate
        return 1.0 - (1.0 - self.per_round_rate()) ** r


@dataclass
class RoundResult:
    round: int
    kind: str  # dense | pruned | control
    target_sparsity: float
    mask_sparsity: float
    model_sparsity: float
    cer: float | None
    train_final_loss: float | None
    train_best_dev_cer: float | None
    train_wall_s: float
    run_dir: str


@dataclass
class LotteryResult:
    out: str
    merged_dir: str
    rate: float | None  # None with an explicit schedule
    final_sparsity: float
    rounds: list[RoundResult]
    baseline_cer: float | None  # round 0: unpruned LoRA
    ticket_cer: float | None
    control_cer: float | None
    cer_delta_points: float | None  # ticket - baseline, in CER points
    n_prunable: int
    protected: list[str]
    train_wall_s: float | None = None  # training time of the rounds run here (round 0 too unless round0_adapter)
    note: str = ("unstructured: the merged model stores zeros densely; no sparse kernel is used, so no speed-up "
                 "is claimed")
    details: dict = field(default_factory=dict)


def _train_config(cfg: LotteryConfig, base_spec: str, run_dir: Path, **extra):
    from soritune.train.config import TrainConfig

    fields = {"method": "lora", "eval_at_start": False, "keep_last": 2, **cfg.train_overrides, **extra}
    return TrainConfig(model=base_spec, train=cfg.train, dev=cfg.dev, out=str(run_dir), seed=cfg.seed,
                       overwrite=True, **fields)


def adapted_weight_names(model, tcfg) -> list[str]:
    """Weights of the modules the adapter targets (what protect_adapted keeps dense)."""
    import re

    from soritune.train.adapters import target_regex

    rx = re.compile(target_regex(tcfg.target_modules(), tcfg.target_side))
    return [f"{n}.weight" for n, _ in model.named_modules() if rx.fullmatch(n)]


def merged_with(base_dir: Path, adapter_dir: Path, masks: dict, trainable: dict | None = None):
    """Load base, merge the adapter (optionally with other LoRA tensors, e.g. step k), re-apply masks."""
    from soritune.compress.masks import apply_masks
    from soritune.models.adapters import apply_adapter

    bundle = load(str(base_dir))
    model = apply_adapter(bundle.model, adapter_dir, merge=True, state=trainable)
    if masks:
        apply_masks(model, masks)
    return model.eval(), bundle.processor


def _write_base(weights: dict, like_dir: Path, masks: dict, dest: Path, seed: int) -> Path:
    """A masked copy of the rewound base: weights (name -> tensor) times masks, saved with masks."""
    import torch

    from soritune.compress.masks import apply_masks, save_masks
    from soritune.compress.modelio import save_model

    bundle = load(str(like_dir), seed=seed)
    params = dict(bundle.model.named_parameters())
    with torch.no_grad():
        for n, w in weights.items():
            params[n].copy_(w)
    apply_masks(bundle.model, masks)
    save_model(bundle.model, bundle.processor, dest)
    save_masks(dest, masks, {"method": "lottery"})
    return dest


class _Runner:
    """Holds the run's state: pre-trained weights, clips, the rounds so far."""

    def __init__(self, cfg: LotteryConfig, progress: Callable[[dict], None] | None):
        from soritune.compress import measure
        from soritune.compress.modelio import save_model

        self.cfg, self.progress, self.out = cfg, progress, Path(cfg.out)
        self.out.mkdir(parents=True, exist_ok=True)
        base0 = load(cfg.model, cfg.adapter, seed=cfg.seed)
        self.base0_dir = self.out / "pretrained"
        save_model(base0.model, base0.processor, self.base0_dir)
        self.total_params = sum(p.numel() for p in base0.model.parameters())
        tcfg = _train_config(cfg, str(self.base0_dir), self.out / "round-0")
        from soritune.compress.masks import prunable_params

        params = prunable_params(base0.model, cfg.modules, cfg.side)
        adapted = set(adapted_weight_names(base0.model, tcfg))
        self.protected = sorted(adapted & set(params)) if cfg.protect_adapted else []
        self.names = [n for n in params if n not in self.protected]
        # rewound to W0 and never touched by an adapter, a prunable weight scores |W0| in every round:
        # the rounds then select exactly the one-shot magnitude mask of the pre-trained weights
        self.one_shot_equivalent = cfg.rewind_step == 0 and (cfg.score == "base" or not adapted & set(self.names))
        if not self.names:
            raise CompressError("protect_adapted leaves no prunable weight (every prunable module carries an adapter)")
        self.w0 = {n: params[n].detach().clone() for n in self.names}
        self.current = self.w0  # the base weights of the latest round (rewound, masked)
        src = cfg.eval_manifest or cfg.dev
        self.clips = measure.load_clips(src, cfg.eval_limit) if src and cfg.evaluate else None
        self.rounds: list[RoundResult] = []

    def emit(self, **event) -> None:
        if self.progress:
            self.progress(event)

    def train(self, base_dir: Path, run_dir: Path, **extra):
        from soritune.train import run as train_run

        def relay(ev):
            self.emit(**{**ev, "phase": "train", "run": run_dir.name})
        return train_run(_train_config(self.cfg, f"hf:{base_dir}", run_dir, **extra), progress=relay)

    def evaluate(self, model, processor) -> float | None:
        if self.clips is None:
            return None
        from soritune.compress import measure

        return measure.score_model(measure.torch_backend(model, processor), self.clips, batch_size=self.cfg.batch_size,
                                   max_new_tokens=self.cfg.max_new_tokens)["cer"]

    def record(self, r: int, kind: str, target: float, masks: dict, model, processor, tres, run_dir: Path) -> None:
        from soritune.compress.masks import mask_sparsity

        pruned = sum(int((~m).sum()) for m in masks.values()) if masks else 0
        self.emit(event="round", phase="eval", round=r, kind=kind)
        self.rounds.append(RoundResult(
            round=r, kind=kind, target_sparsity=round(target, 6), mask_sparsity=mask_sparsity(masks) if masks else 0.0,
            model_sparsity=pruned / self.total_params, cer=self.evaluate(model, processor),
            train_final_loss=tres.final_loss, train_best_dev_cer=tres.best_dev_cer, train_wall_s=tres.train_wall_s,
            run_dir=str(run_dir)))

    def scores(self, model, masks: dict | None) -> dict:
        from soritune.compress.masks import magnitude_scores

        params = dict(model.named_parameters())
        if self.cfg.score == "base":
            params = {n: self.current[n] for n in self.names}
        return magnitude_scores({n: params[n] for n in self.names}, masks)

    def rewind_weights(self) -> dict:
        """W0, or W0 + B_k A_k from round 0's step-k checkpoint (late rewinding)."""
        if self.cfg.rewind_step == 0:
            return self.w0
        from soritune.train.checkpoint import checkpoint_name, load_trainable

        ckpt = self.out / "round-0" / "checkpoints" / checkpoint_name(self.cfg.rewind_step)
        if not (ckpt / "trainable.safetensors").exists():
            raise CompressError(f"rewind_step: round 0 has no checkpoint at step {self.cfg.rewind_step} "
                                f"(it ran fewer steps?)")
        model, _ = merged_with(self.base0_dir, self.out / "round-0" / "adapter", {}, load_trainable(ckpt))
        params = dict(model.named_parameters())
        return {n: params[n].detach().clone() for n in self.names}


def run(config: LotteryConfig | dict, progress: Callable[[dict], None] | None = None) -> LotteryResult:
    """Round 0 (dense LoRA), `rounds` x (prune, rewind, retrain), control; see the module docstring."""
    from soritune.compress.masks import random_masks, select_masks
    from soritune.compress.modelio import save_model

    cfg = config if isinstance(config, LotteryConfig) else validate(LotteryConfig, dict(config))
    R = _Runner(cfg, progress)
    out = R.out
    extra0 = {"save_every": cfg.rewind_step, "keep_last": 10 ** 6} if cfg.rewind_step else {}
    R.emit(event="round", phase="train", round=0, kind="dense")
    if cfg.round0_adapter:
        round0 = Path(cfg.round0_adapter)
        tres = _trained_elsewhere(round0)
    else:
        round0 = out / "round-0" / "adapter"
        tres = R.train(R.base0_dir, out / "round-0", **extra0)
    model, proc = merged_with(R.base0_dir, round0, {})
    R.record(0, "dense", 0.0, {}, model, proc, tres, round0.parent)
    rewound = R.rewind_weights()
    masks: dict | None = None
    base_dir = R.base0_dir
    for r in range(1, cfg.rounds + 1):
        R.emit(event="round", phase="prune", round=r, kind="pruned")
        target = cfg.sparsity_after(r)
        masks = select_masks(R.scores(model, masks), target, cfg.scope)
        prev_base = base_dir
        base_dir = _write_base(rewound, R.base0_dir, masks, out / f"round-{r}" / "base", cfg.seed)
        R.current = {n: w * masks[n] for n, w in rewound.items()}
        if not cfg.keep_intermediate and prev_base != R.base0_dir:
            shutil.rmtree(prev_base, ignore_errors=True)
        R.emit(event="round", phase="train", round=r, kind="pruned")
        tres = R.train(base_dir, out / f"round-{r}" / "run")
        model, proc = merged_with(base_dir, out / f"round-{r}" / "run" / "adapter", masks)
        R.record(r, "pruned", target, masks, model, proc, tres, out / f"round-{r}" / "run")
    merged_dir = save_model(model, proc, out / "merged")
    from soritune.compress.masks import save_masks

    save_masks(merged_dir, masks, {"method": "lottery", "rounds": cfg.rounds, "rate": cfg.per_round_rate()})
    _publish(out, base_dir, out / f"round-{cfg.rounds}" / "run" / "adapter")
    control_cer = None
    if cfg.control:
        R.emit(event="round", phase="train", round=cfg.rounds, kind="control")
        cmasks = random_masks({n: R.w0[n] for n in R.names}, 0.0, seed=cfg.seed + 1, like=masks)
        cdir = _write_base(rewound, R.base0_dir, cmasks, out / "control" / "base", cfg.seed)
        ctres = R.train(cdir, out / "control" / "run")
        cmodel, cproc = merged_with(cdir, out / "control" / "run" / "adapter", cmasks)
        R.record(cfg.rounds, "control", cfg.sparsity_after(cfg.rounds), cmasks, cmodel, cproc, ctres, out / "control" / "run")
        control_cer = R.rounds[-1].cer
        if not cfg.keep_intermediate:
            shutil.rmtree(cdir, ignore_errors=True)
    result = _result(cfg, R, merged_dir, control_cer)
    write_run(out, cfg, result, stage="lottery", legacy=("lottery_report.json",))
    return result


def _trained_elsewhere(adapter: Path):
    """Round 0's figures from the run that trained `adapter` (RUN_DIR/adapter + RUN_DIR/summary.json)."""
    from types import SimpleNamespace

    from soritune.jsonio import read_json

    if not (adapter / "adapter_config.json").exists():
        raise CompressError(f"round0_adapter {adapter}: no adapter_config.json there (expected RUN_DIR/adapter)")
    summary = adapter.parent / "summary.json"
    s = read_json(summary) if summary.exists() else {}
    return SimpleNamespace(final_loss=s.get("final_loss"), best_dev_cer=s.get("best_dev_cer"),
                           train_wall_s=s.get("train_wall_s"))


def _publish(out: Path, base_dir: Path, adapter_dir: Path) -> None:
    """OUT/base (final masked base) and OUT/adapter (final adapter), the unmerged pair."""
    for name, src in (("base", base_dir), ("adapter", adapter_dir)):
        dest = out / name
        shutil.rmtree(dest, ignore_errors=True)
        shutil.copytree(src, dest)


def _result(cfg: LotteryConfig, R: _Runner, merged_dir: Path, control_cer: float | None) -> LotteryResult:
    base = R.rounds[0].cer
    ticket = [x for x in R.rounds if x.kind == "pruned"][-1].cer
    delta = 100 * (ticket - base) if base is not None and ticket is not None and math.isfinite(ticket - base) else None
    return LotteryResult(
        out=str(R.out), merged_dir=str(merged_dir), rate=cfg.per_round_rate(), final_sparsity=cfg.sparsity_after(cfg.rounds),
        rounds=R.rounds, baseline_cer=base, ticket_cer=ticket, control_cer=control_cer,
        cer_delta_points=round(delta, 3) if delta is not None else None, n_prunable=sum(w.numel() for w in R.w0.values()),
        protected=R.protected,
        train_wall_s=round(sum(r.train_wall_s or 0.0 for r in R.rounds if not (r.round == 0 and cfg.round0_adapter)), 3),
        details={"rounds_reduce_to_one_shot": R.one_shot_equivalent,
                 "scope": cfg.scope, "score": cfg.score, "rewind_step": cfg.rewind_step, "modules": cfg.modules,
                 "side": cfg.side, "eval_set": R.clips.source if R.clips else None,
                 "n_eval": len(R.clips) if R.clips else 0, "train_overrides": cfg.train_overrides})
