"""Structured pruning: remove attention heads, FFN channels or whole layers; the model shrinks.

    from soritune.compress.prune_structured import StructuredConfig, run
    result = run(StructuredConfig(model="bundled:whisper-base", target="ffn", fraction=0.25, out="ffn25/"))

Structures are ranked by a named importance score (`magnitude`, or first-order `taylor` on a
calibration manifest) and the lowest `fraction` of each group removed (per attention module for
heads, per layer for FFN channels, per stack for layers). The result is measured, not assumed:
parameters, weight-file size and decoding time before and after on the same clips.

FFN- and layer-pruned models are standard Whisper configs (`hf:OUT`, `soritune eval`, CTranslate2
export all work). Head-pruned models record their head counts in OUT/structure.json and load with
`soritune.models.load(OUT)` (the head-pruned row of `models.formats`); CTranslate2 cannot express
them (it assumes equal head counts).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from soritune.config import StageConfig, validate
from soritune.infer.options import MAX_NEW_TOKENS
from soritune.models import load
from soritune.models.formats import STRUCTURE_FILE, load_structured  # noqa: F401 - load_structured re-exported
from soritune.rundir import write_run


class StructuredConfig(StageConfig):
    """Settings of `soritune prune --method structured`."""

    model: str = Field(description="model spec to prune")
    adapter: str | None = Field(None, description="PEFT adapter merged in before pruning")
    out: Path = Field(description="output directory (HF model, prune_report.json, structure.json for heads)")
    target: Literal["heads", "ffn", "layers"] = Field("ffn", description="what is removed")
    fraction: float = Field(0.25, ge=0.0, lt=1.0, description="share of each group removed (heads per module, channels per layer, layers per stack)")
    side: Literal["encoder", "decoder", "both"] = Field("both", description="which stack(s) are pruned")
    score: Literal["magnitude", "taylor"] = Field("magnitude", description="importance score that ranks the structures")
    calib_manifest: str | None = Field(None, description="manifest for the taylor score's gradients")
    calib_batches: int = Field(4, ge=1, description="calibration batches for taylor")
    calib_batch_size: int = Field(4, ge=1, description="utterances per calibration batch")
    eval_manifest: str | None = Field(None, description="manifest for CER and timing before/after (default: synthetic clips, timing only)")
    eval_limit: int | None = Field(20, ge=1, description="utterances of eval_manifest used")
    measure_speed: bool = Field(True, description="time decoding before and after on the same clips")
    repeats: int = Field(3, ge=1, description="timed passes (median reported)")
    batch_size: int = Field(8, ge=1, description="decoding batch size")
    max_new_tokens: int = Field(128, ge=1, le=MAX_NEW_TOKENS, description="decoding token limit")
    seed: int = Field(0, description="initialisation seed for tiny:/random: specs")

    @model_validator(mode="after")
    def _need_calib(self):
        if self.score == "taylor" and not self.calib_manifest:
            raise ValueError("score=taylor needs calib_manifest (utterances whose loss gradients rank the structures)")
        return self


@dataclass
class StructuredResult:
    out: str
    target: str
    score: str
    fraction: float
    side: str
    params_before: int
    params_after: int
    file_mb_before: float
    file_mb_after: float
    removed: dict  # per group: indices removed
    loads_as_standard_hf: bool
    cer_before: float | None = None
    cer_after: float | None = None
    timing_before: dict | None = None
    timing_after: dict | None = None
    speedup: float | None = None  # median time before / after, same clips, same threads
    details: dict = field(default_factory=dict)


def calibration_batches(manifest: str, processor, n_batches: int, batch_size: int):
    """Padded 30-s batches from the manifest (the HF forward the Taylor score differentiates)."""
    from soritune.data.dataset import ManifestDataset, WhisperCollator

    tok = processor.tokenizer
    ds = ManifestDataset(manifest, tok)
    collator = WhisperCollator(processor.feature_extractor, pad_token_id=tok.convert_tokens_to_ids("<|endoftext|>"),
                               dynamic_length=False)
    n = min(len(ds), n_batches * batch_size)
    for s in range(0, n, batch_size):
        yield collator([ds[i] for i in range(s, min(n, s + batch_size))])


def importance(model, processor, cfg: StructuredConfig) -> dict:
    from soritune.compress import structures as S

    if cfg.score == "magnitude":
        return S.magnitude_importance(model, cfg.target, cfg.side)
    batches = calibration_batches(cfg.calib_manifest, processor, cfg.calib_batches, cfg.calib_batch_size)
    return S.taylor_importance(model, cfg.target, cfg.side, batches)


def shrink(model, kept: dict, target: str):
    from soritune.compress import structures as S

    if target == "ffn":
        return S.shrink_ffn(model, kept)
    if target == "layers":
        return S.keep_layers(model, kept)
    return S.prune_heads(model, kept)


def save_structured(model, processor, out: Path, target: str, kept: dict) -> None:
    from soritune.compress.modelio import save_model

    save_model(model, processor, out)
    if target == "heads":
        counts = {name: len(idx) for name, idx in kept.items()}
        (out / STRUCTURE_FILE).write_text(json.dumps({"heads": counts}, indent=1), encoding="utf-8")


def _timed(model, processor, clips, cfg) -> tuple[float | None, dict | None]:
    from soritune.compress import measure

    backend = measure.torch_backend(model, processor)
    scored = measure.score_model(backend, clips, batch_size=cfg.batch_size, max_new_tokens=cfg.max_new_tokens,
                                 timing=cfg.measure_speed, repeats=cfg.repeats)
    cer = scored["cer"] if clips.source != "synthetic" else None
    return cer, scored.get("timing")


def run(config: StructuredConfig | dict) -> StructuredResult:
    """Rank, remove, rebuild smaller, save; measure params, file size, CER and speed before/after."""
    import tempfile

    from soritune.compress import measure
    from soritune.compress.modelio import mb, param_count, save_model, weights_file_bytes
    from soritune.compress.structures import choose_kept

    cfg = config if isinstance(config, StructuredConfig) else validate(StructuredConfig, dict(config))
    out = Path(cfg.out)
    bundle = load(cfg.model, cfg.adapter, seed=cfg.seed)
    model, processor = bundle.model, bundle.processor
    scores = importance(model, processor, cfg)
    kept = choose_kept(scores, cfg.fraction)
    removed = {k: sorted(set(range(scores[k].numel())) - set(v)) for k, v in kept.items()}
    small = shrink(model, kept, cfg.target)
    save_structured(small, processor, out, cfg.target, kept)
    with tempfile.TemporaryDirectory(prefix="soritune-orig-") as tmp:
        save_model(model, processor, tmp)
        before_bytes = weights_file_bytes(tmp)
    clips = measure.load_clips(cfg.eval_manifest, cfg.eval_limit)
    cer_b, t_b = _timed(model, processor, clips, cfg)
    cer_a, t_a = _timed(small, processor, clips, cfg)
    result = StructuredResult(
        out=str(out), target=cfg.target, score=cfg.score, fraction=cfg.fraction, side=cfg.side,
        params_before=param_count(model), params_after=param_count(small), file_mb_before=mb(before_bytes),
        file_mb_after=mb(weights_file_bytes(out)), removed=removed, loads_as_standard_hf=cfg.target != "heads",
        cer_before=cer_b, cer_after=cer_a, timing_before=t_b, timing_after=t_a,
        speedup=round(t_b["median_s"] / t_a["median_s"], 3) if t_b and t_a and t_a["median_s"] > 0 else None,
        details={"scores": {k: [round(float(x), 6) for x in v] for k, v in scores.items()},
                 "n_clips": len(clips), "clips": clips.source,
                 "config_after": {k: getattr(small.config, k) for k in (
                     "encoder_layers", "decoder_layers", "encoder_ffn_dim", "decoder_ffn_dim")}},
    )
    write_run(out, cfg, result, stage="prune", legacy=("prune_report.json",))
    return result
