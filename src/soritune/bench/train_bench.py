"""`bench train`: peak memory and samples/s of each training method (full, LoRA, QLoRA 8/4-bit, DoRA)
on any architecture (random:large-v3 has the real cost of large-v3), using soritune's training loop
(soritune.train.run), with the standard Hugging Face + PEFT int8 recipe as a peer row.

    from soritune.bench.train_bench import TrainBenchConfig, run
    result = run(TrainBenchConfig(model="random:large-v3", methods=["lora", "qlora4"], batch_size=4, out="bench/"))

Each method runs in a fresh process (soritune.bench.train_worker), so one method's peak memory never
hides in another's and a crash (out of memory) costs one row, not the run. samples/s counts the steps
after `warmup_steps`; the timed window ends after `steps` steps or after `seconds` seconds.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Literal

from pydantic import Field

from soritune.bench.workload import ClipSourceConfig
from soritune.errors import SoritunError
from soritune.train.methods import METHOD_PRESETS

MethodName = Literal[tuple(METHOD_PRESETS)]  # the train stage's preset aliases (soritune.train.methods)


class TrainBenchConfig(ClipSourceConfig):
    """Benchmark training methods: peak memory and samples/s."""

    model: str = Field("bundled:whisper-base", description="model spec; random:ARCH measures any architecture")
    methods: list[MethodName] = Field(["full", "lora", "qlora8", "qlora4"], description="soritune methods measured")
    recipe: bool = Field(True, description="add the standard HF Trainer + PEFT int8 LoRA recipe as a peer row")
    batch_size: int = Field(4, ge=1, description="utterances per step (the same for every row)")
    seconds: float | None = Field(30.0, gt=0, description="timed window per method, seconds (ignored with steps)")
    steps: int | None = Field(None, ge=1, description="timed steps per method (overrides seconds)")
    warmup_steps: int = Field(1, ge=0, description="untimed steps first")
    manifest: str | None = Field(None, description="training clips (else synthetic); cut to a multiple of batch_size")
    synthetic: int | None = Field(None, ge=1, description="N synthetic clips (default 4 x batch_size)")
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="auto = the GPU when there is one")
    mixed_precision: Literal["auto", "no", "bf16", "fp16"] = Field("auto", description="as in soritune train")
    gradient_checkpointing: bool = Field(False, description="soritune rows: recompute activations")
    dynamic_length: bool = Field(True, description="soritune rows: pad each batch to its longest clip (soritune's default)")
    threads: int | None = Field(None, ge=1, description="torch CPU threads (default: all cores)")
    timeout_s: float = Field(3600, gt=0, description="per-method process time limit")
    out: str = Field("bench", description="output directory: bench.json, bench.md, plots")
    plots: bool = Field(True, description="write PNG plots")


@dataclass
class TrainRow:
    method: str
    runner: str  # soritune | hf-peft-recipe
    steps_timed: int
    samples_per_s: float | None
    step_s: dict  # {median, min, max, n} of timed step durations
    peak_mem_mb: float | None  # GPU: max allocated; CPU: peak RSS of the worker process
    memory_kind: str  # "gpu allocated" | "cpu rss"
    memory: dict
    trainable_params: int | None
    total_params: int | None
    encoder_frames: str  # "dynamic" (padded per batch) | "3000 (30 s)"
    settings: dict
    vs_recipe_samples_per_s: float | None = None
    vs_recipe_memory: float | None = None  # this row's peak / the recipe's peak (<1: less memory)


@dataclass
class TrainBenchResult:
    kind: str
    config: dict
    environment: dict
    data: dict
    rows: list[TrainRow]
    errors: list[dict]
    notes: list[str]
    wall_s: float
    command: str | None = None
    definitions: dict = field(default_factory=dict)


NOTES = [
    "Peer 'hf-peft-recipe': peft's examples/int8_training Whisper recipe: 8-bit base (load_in_8bit), "
    "prepare_model_for_kbit_training (which turns gradient checkpointing on), LoRA r=32 alpha=64 dropout 0.05 "
    "on q_proj,v_proj, Seq2SeqTrainer, features padded to 30 s and computed before training (as its dataset.map "
    "does), precision matched to the soritune rows. Ratios compare it with the soritune rows at the same batch size.",
    "Memory and speed of large architectures are the same with random weights (random:ARCH); accuracy is not.",
]


def synthetic_corpus(n: int, dest: Path) -> Path:
    """n clips of the benchmark sentences as WAV files + a manifest in dest; returns the manifest."""
    from soritune.audio import write_wav
    from soritune.bench.workload import synthetic
    from soritune.data.manifest import write_manifest

    wl = synthetic(n)
    dest.mkdir(parents=True, exist_ok=True)
    rows = []
    for uid, audio, text in zip(wl.ids, wl.audios, wl.texts):
        path = write_wav(dest / f"{uid}.wav", audio)
        rows.append({"id": uid, "audio": path.name, "duration": round(len(audio) / 16000, 4), "text": text})
    return write_manifest(dest / "train.jsonl", rows)


def trim_manifest(src: str, batch_size: int, dest: Path) -> tuple[Path, int, int]:
    """Copy the first multiple-of-batch_size rows of src (absolute audio paths); (path, kept, dropped)."""
    from soritune.data.manifest import read_manifest, write_manifest

    rows = read_manifest(src)
    keep = len(rows) - len(rows) % batch_size
    if keep == 0:
        raise SoritunError(f"bench train: {src} has {len(rows)} rows, fewer than one batch of {batch_size}")
    return write_manifest(dest / "train.jsonl", rows[:keep]), keep, len(rows) - keep


def _worker(job: dict, workdir: Path, timeout_s: float) -> dict:
    """Run one job in a fresh interpreter; its result dict, or {"error": ...}."""
    job_path, out_path = workdir / f"job-{job['name']}.json", workdir / f"result-{job['name']}.json"
    job_path.write_text(json.dumps(job))
    env = dict(os.environ, TOKENIZERS_PARALLELISM="false")
    try:
        proc = subprocess.run([sys.executable, "-m", "soritune.bench.train_worker", str(job_path), str(out_path)],
                              capture_output=True, text=True, timeout=timeout_s, env=env)
    except subprocess.TimeoutExpired:
        return {"error": f"did not finish in {timeout_s:.0f} s"}
    if out_path.exists():
        return json.loads(out_path.read_text())
    tail = (proc.stderr or proc.stdout or "").strip().splitlines()[-3:]
    return {"error": f"worker exited with {proc.returncode}: {' | '.join(tail)}"}


def _row(res: dict) -> TrainRow:
    return TrainRow(**{k: res.get(k) for k in TrainRow.__dataclass_fields__ if k in res})


def _recipe_job(cfg: TrainBenchConfig, base: dict, work: Path, errors: list[dict]) -> dict | None:
    """The recipe's job; a model without a Hugging Face directory is exported first (in a worker)."""
    from soritune.models import model_dir_for, parse_spec

    job = dict(base, name="recipe", runner="hf-peft-recipe", method="qlora8")
    if model_dir_for(parse_spec(cfg.model)) is None:
        res = _worker(dict(base, name="export", runner="export-hf", dest=str(work / "hf-model")), work, cfg.timeout_s)
        if res.get("error"):
            errors.append({"method": "lora on 8-bit base (hf-peft-recipe)", "error": f"export: {res['error']}"})
            return None
        job["hf_dir"] = res["dir"]
    return job


def add_ratios(rows: list[TrainRow]) -> None:
    ref = next((r for r in rows if r.runner != "soritune"), None)
    if ref is None:
        return
    for r in rows:
        if r is ref:
            continue
        if r.samples_per_s and ref.samples_per_s:
            r.vs_recipe_samples_per_s = r.samples_per_s / ref.samples_per_s
        if r.peak_mem_mb and ref.peak_mem_mb:
            r.vs_recipe_memory = r.peak_mem_mb / ref.peak_mem_mb


def run(config: TrainBenchConfig | dict, progress: Callable[[dict], None] | None = None,
        command: str | None = None) -> TrainBenchResult:
    """Measure every method (and the recipe) and write bench.json / bench.md / plots into config.out."""
    from soritune.bench.report import write_section
    from soritune.config import validate
    from soritune.environment import environment

    cfg = config if isinstance(config, TrainBenchConfig) else validate(TrainBenchConfig, dict(config))
    t0 = time.perf_counter()
    threads = cfg.threads or os.cpu_count() or 1
    rows, errors = [], []
    with tempfile.TemporaryDirectory(prefix="soritune-bench-train-") as tmp:
        work = Path(tmp)
        if cfg.manifest:
            manifest, kept, dropped = trim_manifest(cfg.manifest, cfg.batch_size, work / "data")
            data = {"source": cfg.manifest, "n_clips": kept, "n_dropped_to_fill_batches": dropped}
        else:
            n = cfg.synthetic or 4 * cfg.batch_size
            n -= n % cfg.batch_size
            if n == 0:
                raise SoritunError(f"bench train: synthetic={cfg.synthetic} is fewer than one batch of {cfg.batch_size}")
            manifest = synthetic_corpus(n, work / "data")
            data = {"source": f"synthetic:{n}", "n_clips": n, "n_dropped_to_fill_batches": 0}
        base = {"model": cfg.model, "manifest": str(manifest), "batch_size": cfg.batch_size, "seconds": cfg.seconds,
                "steps": cfg.steps, "warmup_steps": cfg.warmup_steps, "device": cfg.device, "threads": threads,
                "mixed_precision": cfg.mixed_precision, "gradient_checkpointing": cfg.gradient_checkpointing,
                "dynamic_length": cfg.dynamic_length, "workdir": str(work)}
        jobs = [dict(base, name=m, runner="soritune", method=m) for m in cfg.methods]
        if cfg.recipe:
            recipe = _recipe_job(cfg, base, work, errors)
            jobs += [recipe] if recipe else []
        for job in jobs:
            if progress:
                progress({"event": "method", "method": job["method"], "runner": job["runner"]})
            res = _worker(job, work, cfg.timeout_s)
            if res.get("error"):
                errors.append({"method": f"{job['method']} ({job['runner']})", "error": res["error"]})
            else:
                rows.append(_row(res))
    add_ratios(rows)
    device = cfg.device if cfg.device != "auto" else ("cuda" if _cuda() else "cpu")
    result = TrainBenchResult(kind="train", config=cfg.model_dump(), environment=environment(device, threads),
                              data=data, rows=rows, errors=errors, notes=list(NOTES),
                              wall_s=round(time.perf_counter() - t0, 1), command=command,
                              definitions={"samples_per_s": "utterances / second over the timed steps",
                                           "peak_mem_mb": "GPU: torch max_memory_allocated; CPU: peak RSS of the "
                                                          "worker process (sampled every 10 ms)"})
    write_section("train", result, cfg.out, plots=cfg.plots, config=cfg)
    return result


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()
