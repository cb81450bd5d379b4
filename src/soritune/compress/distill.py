"""Distillation: a student with the teacher's encoder and K decoder layers, trained on teacher
pseudo-labels with CE + temperature-scaled KL (+ optional hidden-state MSE).

    from soritune.compress.distill import DistillConfig, run
    result = run(DistillConfig(teacher="bundled:whisper-base", train="data/train.jsonl", decoder_layers=2,
                               out="distil/", max_steps=500))

Steps: (1) the teacher transcribes the training manifest (greedy, language forced); utterances
whose pseudo-label is further than `filter_threshold` (CER or WER) from the reference are left out
and listed in OUT/pseudo/rejected.jsonl with the reason, the rest form OUT/pseudo/train.jsonl
(text = the pseudo-label, text_ref = the reference); (2) the student is initialised from the
teacher (see distill_student); (3) it trains with `soritune.train`'s loop (accelerate, same
collator, LR schedule, checkpoints, dev CER) on the DistillLoss module; (4) student and teacher are
scored on the same evaluation clips: CER, parameters and decoding speed (RTFx, median of repeats).
OUT/student/ is a standard Hugging Face Whisper directory; OUT/summary.json the report
(distill_report.json links to it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Literal

from pydantic import Field

from soritune.config import StageConfig, save_config, validate
from soritune.errors import CompressError
from soritune.infer.options import MAX_NEW_TOKENS
from soritune.jsonio import write_jsonl
from soritune.models import load
from soritune.models.encoder import ENCODER_INPUT_HELP, EncoderInput
from soritune.rundir import write_run
from soritune.train.config import TrainOverrides


class DistillConfig(StageConfig):
    """Settings of `soritune distill`."""

    teacher: str = Field(description="teacher model spec")
    teacher_adapter: str | None = Field(None, description="PEFT adapter merged into the teacher")
    train: str = Field(description="training manifest (references are used only to filter pseudo-labels)")
    dev: str | None = Field(None, description="dev manifest: student CER during training, best checkpoint")
    eval_manifest: str | None = Field(None, description="manifest for the final student/teacher comparison (default: dev)")
    eval_limit: int | None = Field(100, ge=1, description="utterances of the comparison")
    out: Path = Field(description="output directory")
    decoder_layers: int = Field(2, ge=1, description="student decoder layers (K)")
    pseudo_label: bool = Field(True, description="train on teacher transcripts (False: on the references)")
    filter_metric: Literal["cer", "wer"] = Field("cer", description="pseudo-label filter metric against the reference")
    filter_threshold: float = Field(0.1, ge=0, description="drop pseudo-labels whose CER/WER exceeds this (fraction)")
    alpha: float = Field(0.8, ge=0, description="weight of the cross-entropy on the (pseudo-)labels")
    kl_weight: float = Field(1.0, ge=0, description="weight of the KL term (multiplied by T^2)")
    temperature: float = Field(2.0, gt=0, description="softmax temperature T of the KL term")
    mse_weight: float = Field(0.0, ge=0, description="weight of the hidden-state MSE between mapped layers (0 = off)")
    freeze_encoder: bool = Field(True, description="keep the copied encoder frozen (distil-whisper does)")
    cache_encoder: bool = Field(True, description="with a frozen encoder: keep its outputs in memory across epochs")
    max_steps: int | None = Field(None, ge=1, description="optimizer steps (default: epochs)")
    epochs: float = Field(3.0, gt=0, description="passes over the pseudo-labelled set")
    lr: float = Field(1e-4, gt=0, description="peak learning rate")
    batch_size: int = Field(8, ge=1, description="utterances per micro-batch")
    train_overrides: TrainOverrides = Field(default_factory=dict, description="further TrainConfig fields (grad_accum, warmup_steps, eval_every, threads, ...)")
    label_batch_size: int = Field(8, ge=1, description="teacher decoding batch size for pseudo-labels")
    max_new_tokens: int = Field(128, ge=1, le=MAX_NEW_TOKENS, description="decoding token limit (pseudo-labels and evaluation)")
    encoder_input: EncoderInput = Field("padded", description="decoding input for pseudo-labels and the comparison: " + ENCODER_INPUT_HELP)
    repeats: int = Field(3, ge=1, description="timed decoding passes for the speed comparison (median)")
    seed: int = Field(0, description="seed for data order and tiny:/random: specs")


@dataclass
class DistillResult:
    out: str
    student_dir: str
    layer_map: list[int]
    n_train_in: int
    n_pseudo_kept: int
    n_pseudo_rejected: int
    rejected_by_reason: dict
    steps: int
    train_wall_s: float
    final_loss: float | None
    teacher_cer: float | None
    student_cer: float | None
    cer_delta_points: float | None
    teacher_params: int
    student_params: int
    teacher_timing: dict | None
    student_timing: dict | None
    speedup_rtfx: float | None  # student RTFx / teacher RTFx, same clips, same threads
    details: dict = field(default_factory=dict)


def utterance_error(ref: str, hyp: str, metric: str) -> float:
    from soritune.eval import metrics as M
    from soritune.eval.normalize import normalize_text

    fn = M.char_counts if metric == "cer" else M.word_counts
    counts = fn(normalize_text(ref), normalize_text(hyp))
    rate = counts.rate()
    return float("inf") if rate is None else rate


def pseudo_label(cfg: DistillConfig, teacher, processor, out: Path, progress=None) -> tuple[Path, list[dict], int]:
    """Write OUT/pseudo/train.jsonl (kept) and rejected.jsonl; return (manifest, rejected, n_in)."""
    from soritune.compress import measure
    from soritune.data.manifest import read_manifest, write_manifest

    rows = read_manifest(cfg.train)
    backend = measure.torch_backend(teacher, processor, spec=cfg.teacher, encoder_input=cfg.encoder_input)
    kept, rejected = [], []
    for s in range(0, len(rows), cfg.label_batch_size):
        block = rows[s:s + cfg.label_batch_size]
        clips = measure.Clips([], [], [], cfg.train)
        owners = []
        for row in block:
            if row["duration"] > 30.0:
                rejected.append({"id": row["id"], "reason": "too_long_audio", "detail": f"{row['duration']} s > 30 s"})
                continue
            one = _load_row(row, rejected)
            if one is not None:
                clips.ids.append(row["id"]), clips.texts.append(row["text"]), clips.audios.append(one)
                owners.append(row)
        hyps = measure.transcribe(backend, clips, batch_size=cfg.label_batch_size, max_new_tokens=cfg.max_new_tokens) if owners else []
        for row, hyp in zip(owners, hyps):
            err = utterance_error(row["text"], hyp, cfg.filter_metric)
            if not hyp.strip():
                rejected.append({"id": row["id"], "reason": "empty_pseudo_label", "detail": "teacher output is empty"})
            elif err > cfg.filter_threshold:
                rejected.append({"id": row["id"], "reason": f"{cfg.filter_metric}_above_threshold",
                                 "detail": f"{cfg.filter_metric} {err:.3f} > {cfg.filter_threshold}", "pseudo": hyp,
                                 "text": row["text"]})
            else:
                kept.append({**row, "text": hyp, "text_ref": row["text"], f"pseudo_{cfg.filter_metric}": round(err, 4)})
        if progress:
            progress({"event": "pseudo", "done": min(len(rows), s + len(block)), "total": len(rows)})
    dest = out / "pseudo"
    dest.mkdir(parents=True, exist_ok=True)
    write_jsonl(dest / "rejected.jsonl", rejected)
    if not kept:
        raise CompressError(f"train: no pseudo-label passed the {cfg.filter_metric} <= {cfg.filter_threshold} filter "
                            f"({len(rejected)} rejected, see {dest / 'rejected.jsonl'}); raise filter_threshold")
    return write_manifest(dest / "train.jsonl", kept), rejected, len(rows)


def _load_row(row: dict, rejected: list[dict]):
    from soritune.data.dataset import load_segment
    from soritune.errors import AudioError

    try:
        return load_segment(row["audio"], row.get("offset"), row["duration"] if row.get("offset") is not None else None)
    except AudioError as e:
        rejected.append({"id": row["id"], "reason": e.reason, "detail": e.detail})
        return None


def _train_config(cfg: DistillConfig, manifest: Path, run_dir: Path):
    from soritune.train.config import TrainConfig

    # the pseudo-labelled set is read as it is: no timestamp or prompt targets mixed in
    fields = {"eval_at_start": False, "keep_last": 1, "timestamp_probability": 0.0, "prompt_probability": 0.0,
              "overwrite": True, **cfg.train_overrides}
    return TrainConfig(model=cfg.teacher, train=str(manifest), dev=cfg.dev, out=str(run_dir), adapter="full",
                       freeze_encoder=cfg.freeze_encoder, max_steps=cfg.max_steps, epochs=cfg.epochs, lr=cfg.lr,
                       batch_size=cfg.batch_size, seed=cfg.seed, **fields)


def train_student(cfg: DistillConfig, student, teacher, processor, mapping, manifest: Path, run_dir: Path,
                  progress=None):
    """soritune.train's prepare + fit (loop, schedule, checkpoints, dev CER) on the DistillLoss module."""
    from soritune.compress.distill_student import DistillLoss
    from soritune.train.adapters import BuiltModel, count_params
    from soritune.train.efficiency import EncoderCache
    from soritune.train.methods import ADAPTERS
    from soritune.train.run import fit, prepare

    tcfg = _train_config(cfg, manifest, run_dir)
    with prepare(tcfg) as ctx:
        student.to(ctx.accelerator.device)
        teacher.to(ctx.accelerator.device)
        student.config.use_cache = False
        ADAPTERS["full"](student, tcfg).train()  # every student weight trains (the encoder frozen on request)
        trainable, total = count_params(student)
        built = BuiltModel(student, processor, trainable, total, {"method": "distill"})
        module = DistillLoss(student, teacher, mapping=mapping, alpha=cfg.alpha, kl_weight=cfg.kl_weight,
                             temperature=cfg.temperature, mse_weight=cfg.mse_weight, dynamic_length=tcfg.dynamic_length,
                             cache=EncoderCache() if cfg.freeze_encoder and cfg.cache_encoder else None)
        fitted = fit(ctx, built, module, progress)
        student.eval().config.use_cache = True
        fitted.trainer.encoder_cache_hits = module.cache.hits if module.cache is not None else None
        return fitted.state, fitted.trainer


def _compare(cfg: DistillConfig, teacher, student, processor, clips) -> dict:
    from soritune.compress import measure

    kw = dict(batch_size=cfg.label_batch_size, max_new_tokens=cfg.max_new_tokens)
    out = {}
    for name, model in (("teacher", teacher), ("student", student)):
        scored = measure.score_model(measure.torch_backend(model, processor, encoder_input=cfg.encoder_input), clips,
                                     timing=True,
                                     repeats=cfg.repeats, **kw)
        out[name] = scored
    return out


def run(config: DistillConfig | dict, progress: Callable[[dict], None] | None = None) -> DistillResult:
    """Pseudo-label, initialise the student, train it, compare it with the teacher; see module doc."""
    from soritune.compress import measure
    from soritune.compress.distill_student import make_student
    from soritune.compress.modelio import param_count, save_model

    cfg = config if isinstance(config, DistillConfig) else validate(DistillConfig, dict(config))
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    save_config(cfg, out / "config.yaml")
    bundle = load(cfg.teacher, cfg.teacher_adapter, seed=cfg.seed)
    teacher, processor = bundle.model, bundle.processor
    if cfg.pseudo_label:
        manifest, rejected, n_in = pseudo_label(cfg, teacher, processor, out, progress)
    else:
        from soritune.data.manifest import read_manifest

        manifest, rejected, n_in = Path(cfg.train), [], len(read_manifest(cfg.train))
    student, mapping = make_student(teacher, cfg.decoder_layers)
    state, trainer = train_student(cfg, student, teacher, processor, mapping, manifest, out / "train", progress)
    student_dir = save_model(student, processor, out / "student")
    eval_src = cfg.eval_manifest or cfg.dev
    clips = measure.load_clips(eval_src, cfg.eval_limit)
    cmp = _compare(cfg, teacher, student, processor, clips)
    t, s = cmp["teacher"], cmp["student"]
    has_refs = len(clips) > 0  # synthetic clips carry the sentences they speak as references
    by_reason: dict = {}
    for r in rejected:
        by_reason[r["reason"]] = by_reason.get(r["reason"], 0) + 1
    result = DistillResult(
        out=str(out), student_dir=str(student_dir), layer_map=mapping, n_train_in=n_in,
        n_pseudo_kept=n_in - len(rejected), n_pseudo_rejected=len(rejected), rejected_by_reason=by_reason,
        steps=state.step, train_wall_s=round(trainer.train_wall_s, 3),
        final_loss=(sum(state.recent_losses) / len(state.recent_losses)) if state.recent_losses else None,
        teacher_cer=t["cer"] if has_refs else None, student_cer=s["cer"] if has_refs else None,
        cer_delta_points=round(100 * (s["cer"] - t["cer"]), 3) if has_refs else None,
        teacher_params=param_count(teacher), student_params=param_count(student),
        teacher_timing=t["timing"], student_timing=s["timing"],
        speedup_rtfx=round(s["timing"]["rtfx"] / t["timing"]["rtfx"], 3) if t["timing"]["rtfx"] else None,
        details={"eval_set": clips.source, "n_eval": len(clips), "teacher": cfg.teacher,
                 "teacher_adapter": cfg.teacher_adapter, "loss": {"alpha": cfg.alpha, "kl_weight": cfg.kl_weight,
                 "temperature": cfg.temperature, "mse_weight": cfg.mse_weight}, "freeze_encoder": cfg.freeze_encoder,
                 "pseudo_label": cfg.pseudo_label, "filter": f"{cfg.filter_metric} <= {cfg.filter_threshold}",
                 "encoder_cache_hits": trainer.encoder_cache_hits},
    )
    write_run(out, cfg, result, stage="distill", legacy=("distill_report.json",))
    return result
