"""One speech-LLM recipe end to end: stage 1 (projector), stage 2 (projector + LoRA), evaluation (ASR CER
through soritune's scorer, captioning CIDEr-D) and the study's efficiency protocol (TTFT, TPOT, peak
memory), as one result row. The offline demo runs one recipe; `compare` runs several that differ in one
component. A finished recipe (OUT/result.json with the same config) is reused, not rerun.

    from soritune.speechllm.recipe import RecipeConfig, run_recipe
    row = run_recipe(RecipeConfig(model=SpeechLLMConfig(...)), train="train.jsonl", test="test.jsonl", out="r")
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable, Literal

from pydantic import Field, model_validator

from soritune.bench.memory import MemoryMeter
from soritune.config import StageConfig, save_config
from soritune.jsonio import read_json, to_jsonable, write_json
from soritune.speechllm.bench import GB
from soritune.speechllm.config import SpeechLLMConfig, StageTrainConfig

Progress = Callable[[str, int, int], None]  # (phase, done, total)


class RecipeConfig(StageConfig):
    """The training, evaluation and measurement budget of one recipe (the model is `model`)."""

    model: SpeechLLMConfig = Field(default_factory=SpeechLLMConfig, description="Composition (stage 2 adds LoRA).")
    stage1_steps: int = Field(60, ge=0, description="Stage-1 steps (projector only); 0 skips stage 1 (stage 2 "
                              "then trains a fresh projector beside the LoRA).")
    stage2_steps: int = Field(40, ge=0, description="Stage-2 steps (projector + LoRA); 0 skips stage 2.")
    batch_size: int = Field(4, ge=1, description="Examples per step.")
    lr_stage1: float = Field(1e-3, gt=0, description="Stage-1 peak learning rate.")
    lr_stage2: float = Field(3e-4, gt=0, description="Stage-2 peak learning rate.")
    warmup_steps: int = Field(5, ge=0, description="Linear warm-up steps per stage.")
    replay_fraction: float = Field(0.0, ge=0, le=1, description="Stage 2: share of each batch replayed from "
                                   "the stage-1 data (useful when stage 2 trains on other data).")
    max_new_tokens: int = Field(48, ge=1, description="Token cap per answer in evaluation.")
    eval_batch_size: int = Field(8, ge=1, description="Clips decoded together in evaluation (greedy, left-padded).")
    decode_dtype: Literal["float32", "bfloat16", "auto"] = Field(
        "float32", description="LLM dtype in evaluation and the efficiency protocol: bfloat16 decodes a merged "
        "bf16 copy (SpeechLLM.decoding; it did not pay on the 2-core CPU measured); auto: bfloat16 where the CPU "
        "has native bf16 matrix units.")
    bench_audio_s: float = Field(10.0, gt=0, description="Audio seconds in the efficiency protocol (study: 10).")
    bench_repeats: int = Field(2, ge=1, description="Repeats of the efficiency protocol (median kept).")
    threads: int | None = Field(2, ge=1, description="torch CPU threads.")
    seed: int = Field(0, description="Data order seed.")

    @model_validator(mode="after")
    def _trains_something(self):
        if not self.stage1_steps and not self.stage2_steps:
            raise ValueError("stage1_steps and stage2_steps are both 0: at least one stage must train")
        return self


def _done(out: Path, cfg: RecipeConfig) -> dict | None:
    if not (out / "result.json").is_file() or not (out / "recipe.yaml").is_file():
        return None
    from soritune.config import load_config

    try:
        same = load_config(RecipeConfig, out / "recipe.yaml").model_dump() == cfg.model_dump()
    except Exception:  # noqa: BLE001 - an unreadable earlier config means: run again
        return None
    return read_json(out / "result.json") if same else None


def run_recipe(cfg: RecipeConfig, *, train: str | Path, test: str | Path, out: str | Path, name: str | None = None,
               progress: Progress | None = None, reuse: bool = True) -> dict:
    """Train, evaluate and measure; writes OUT/result.json (the row) and returns it."""
    import torch

    from soritune.speechllm.model import SpeechLLM
    from soritune.speechllm.train import run_stage

    out = Path(out)
    if reuse and (row := _done(out, cfg)) is not None:
        return row
    out.mkdir(parents=True, exist_ok=True)
    save_config(cfg, out / "recipe.yaml")
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    tell = progress or (lambda *_: None)
    t0, cpu0 = time.perf_counter(), time.process_time()
    stages = []
    with MemoryMeter("cpu") as train_meter:
        model = SpeechLLM(cfg.model.model_copy(update={"lora": False}))
        load_s = time.perf_counter() - t0
        for stage, steps, lr in ((1, cfg.stage1_steps, cfg.lr_stage1), (2, cfg.stage2_steps, cfg.lr_stage2)):
            if not steps:
                continue
            stage_cfg = StageTrainConfig(
                data=str(train), out=str(out / f"stage{stage}"), stage=stage, model=model.config, steps=steps,
                batch_size=cfg.batch_size, lr=lr, warmup_steps=min(cfg.warmup_steps, steps - 1),
                replay=str(train) if stage == 2 and cfg.replay_fraction else None,
                replay_fraction=cfg.replay_fraction if stage == 2 else 0.0, seed=cfg.seed, log_every=5)
            res = run_stage(stage_cfg, model=model,
                            progress=lambda ev, s=stage: tell(f"stage {s}", ev["step"], ev["total"]))
            stages.append({"stage": stage, "steps": steps, "first_loss": round(res.first_loss, 4),
                           "last_loss": round(res.last_loss, 4), "train_s": res.train_s,
                           "trainable_params": res.trainable_params})
    train_s = time.perf_counter() - t0
    scored = score_model(model, test, out, cfg, progress=tell)
    row = {
        "name": name or out.name, "encoder": cfg.model.encoder, "projector": cfg.model.projector,
        "llm": cfg.model.llm, "lora_targets": list(cfg.model.lora_targets) if cfg.stage2_steps else [],
        "draft": cfg.model.draft, **scored, "train_peak_mem_gb": round(train_meter.reading.peak_rss_mb / GB, 3), "load_s": round(load_s, 1),
        "train_s": round(train_s, 1), "wall_s": round(time.perf_counter() - t0, 1),
        "cpu_s": round(time.process_time() - cpu0, 1), "stages": stages,
    }
    write_json(out / "result.json", row)
    return to_jsonable(row)


def score_model(model, test: str | Path, out: Path, cfg: RecipeConfig, progress: Progress | None = None) -> dict:
    """The report every recipe and compression step shares: evaluation on `test` (ASR CER/WER, CIDEr-D,
    failures) under OUT/eval, and the study's efficiency protocol (TTFT, TPOT, peak memory) under OUT/bench."""
    from soritune.speechllm.bench import SpeechLLMBenchConfig, run_bench
    from soritune.speechllm.evaluate import evaluate

    tell = progress or (lambda *_: None)
    with model.decoding(cfg.decode_dtype):  # one decoding form for both
        t1 = time.perf_counter()
        report = evaluate(model, test, out_dir=out / "eval", max_new_tokens=cfg.max_new_tokens,
                          batch_size=cfg.eval_batch_size, progress=lambda i, n: tell("evaluate", i, n))
        eval_s = time.perf_counter() - t1
        tell("efficiency protocol", 0, 1)
        bench = run_bench(SpeechLLMBenchConfig(out=str(out / "bench"), audio_s=cfg.bench_audio_s, attn=["sdpa"],
                                               protocols=["study"], repeats=cfg.bench_repeats, warmup=1,
                                               threads=cfg.threads), model=model)
    study = bench["rows"][0]
    asr, caps = report.get("asr") or {}, report.get("captions") or {}
    return {
        "asr_cer": asr.get("cer"), "asr_wer": asr.get("wer"), "asr_cer_ci95": (asr.get("ci95") or {}).get("cer"),
        "asr_n": asr.get("n", 0), "cider_d": caps.get("cider_d"), "caption_n": caps.get("n", 0),
        "ttft_ms": study["ttft_ms"], "tpot_ms": study["tpot_ms"], "peak_mem_gb": study["peak_mem_gb"],
        "peak_mem_definition": study["peak_mem_definition"], "eval_s": round(eval_s, 1),
        "decode_dtype": report["decode_dtype"],
        "failures": report["failures"], "truncated_audio_s": report["truncated_audio_s"],
        "bench_audio_tokens": bench["audio"]["n_audio_tokens"],
        "load_average_1_5_15": bench["environment"].get("load_average_1_5_15"),
        "llm_params": model.llm_info.get("params"),
    }
