"""`bench infer`: latency, TTFT, TPOT, tokens/s, RTFx and peak memory of soritune's transcription
backends and their peers (faster-whisper, Hugging Face generate), in one run on the same clips.

    from soritune.bench.infer_bench import InferBenchConfig, run
    result = run(InferBenchConfig(model="bundled:whisper-base", synthetic=8, batch_sizes=[1], out="bench/"))

Schedule: every system is loaded first; per batch size, each system is warmed up on one batch, then
`repeats` rounds run every system over all clips (the order rotates each round, so load on a shared
machine falls on all systems alike). Each round a system runs its plain transcription call (latency,
RTFx, tokens/s) and then the instrumented decoding (TTFT, TPOT). A row reports median / min / max over
rounds. Ratios: RTFx of a row / RTFx of the peer row at the same batch size (faster-whisper at the
same compute type; HF generate float32 eager).
"""

from __future__ import annotations

import statistics
import time
import typing
from dataclasses import dataclass, field
from typing import Callable, Literal

from pydantic import Field, field_validator

from soritune.bench.infer_runners import (
    CT2_DTYPES,
    TORCH_DTYPES,
    CT2Runner,
    FasterWhisperRunner,
    HFRunner,
    Runner,
    TorchRunner,
)
from soritune.bench.memory import MemoryMeter
from soritune.bench.timing import predicted_latency_s, relative_error, summarize
from soritune.bench.workload import ClipSourceConfig
from soritune.infer.options import MAX_NEW_TOKENS

Peer = Literal["faster-whisper", "hf-generate"]
DEFAULT_DTYPES = {"cpu": {"torch": ["float32"], "ct2": ["float32", "int8"]},
                  "cuda": {"torch": ["float32", "bfloat16", "float16"], "ct2": ["float16", "int8_float16"]}}
CONSISTENCY_TOLERANCE = 0.10


class InferBenchConfig(ClipSourceConfig):
    """Benchmark transcription speed and memory against faster-whisper and HF generate."""

    model: str = Field("bundled:whisper-base", description="model spec (bundled:whisper-base, hf:DIR, ct2:DIR, tiny:, random:ARCH)")
    adapter: str | None = Field(None, description="PEFT adapter directory merged into the model (every system)")
    manifest: str | None = Field(None, description="manifest whose clips are decoded (else synthetic clips)")
    limit: int | None = Field(None, ge=1, description="first N manifest rows only")
    synthetic: int | None = Field(None, ge=1, description="N synthetic Korean clips (default 8 when no manifest)")
    backends: list[Literal["torch", "ct2"]] = Field(["torch", "ct2"], description="soritune backends measured (all: every one; "
                                                    "peers run regardless)")
    dtypes: list[str] | None = Field(None, description="compute types (default per device: CPU torch float32, ct2 float32+int8)")
    attn: list[Literal["sdpa", "eager"]] = Field(["sdpa", "eager"], description="attention kernels for torch and HF rows")
    encoder_inputs: list[Literal["padded", "trimmed"]] = Field(
        ["padded"], description="soritune rows: padded (30-s input, as the peers) and/or trimmed (each batch's "
        "own length; for models fine-tuned by soritune with dynamic length)")
    peers: list[Peer] = Field(["faster-whisper", "hf-generate"], description="peers run in the same session")
    hf_dtypes: list[Literal["float32", "bfloat16", "float16"]] = Field(["float32"], description="dtypes of HF generate rows")
    batch_sizes: list[int] = Field([1, 4, 8], description="clips decoded together")
    repeats: int = Field(5, ge=1, description="measured rounds per configuration (median and min reported)")
    warmup: int = Field(1, ge=0, description="unmeasured warm-up runs per system and batch size")
    max_new_tokens: int = Field(MAX_NEW_TOKENS, ge=2, le=MAX_NEW_TOKENS, description="token cap per clip, the same for every system")
    threads: int | None = Field(None, ge=1, description="CPU threads for every system (default: all cores)")
    device: str = Field("auto", description="auto | cpu | cuda | cuda:N")
    language: str = Field("ko", description="Whisper language code (forced)")
    task: Literal["transcribe", "translate"] = Field("transcribe", description="Whisper task")
    out: str = Field("bench", description="output directory: bench.json, bench.md, plots")
    plots: bool = Field(True, description="write PNG plots")

    @field_validator("backends", mode="before")
    @classmethod
    def _all_backends(cls, v):
        return list(typing.get_args(typing.get_args(cls.model_fields["backends"].annotation)[0])) if v in ("all", ["all"]) else v

    @field_validator("batch_sizes")
    @classmethod
    def _positive(cls, v):
        if not v or any(b < 1 for b in v):
            raise ValueError("batch sizes must be integers >= 1")
        return sorted(set(v))

    @field_validator("device")
    @classmethod
    def _device(cls, v):
        if v not in ("auto", "cpu", "cuda") and not (v.startswith("cuda:") and v[5:].isdigit()):
            raise ValueError("allowed: auto, cpu, cuda, cuda:N")
        return v

    @field_validator("dtypes")
    @classmethod
    def _dtypes(cls, v):
        bad = [d for d in (v or []) if d not in TORCH_DTYPES and d not in CT2_DTYPES]
        if bad:
            raise ValueError(f"unknown dtype(s) {bad}; allowed: {', '.join(sorted(set(TORCH_DTYPES + CT2_DTYPES)))}")
        return v


@dataclass
class InferRow:
    """One system at one batch size. Timing dicts are {median, min, max, n} over rounds."""

    key: str
    label: str
    system: str
    backend: str
    dtype: str
    attn: str | None
    batch_size: int
    device: str
    n_clips: int
    audio_s: float
    latency_ms: dict  # mean batch latency (audio in -> text out), what each clip of a batch waits
    per_clip_ms: dict  # wall time of a round / clips
    ttft_ms: dict
    tpot_ms: dict
    tokens_per_s: dict  # text tokens out / wall time
    rtfx: dict  # audio seconds / wall seconds
    predicted_latency_ms: dict  # mean over batches of TTFT + (n - 1) * TPOT
    consistency_err: float | None  # |predicted - measured| / measured, medians
    n_steps_mean: float
    new_tokens: int  # text tokens of one round over all clips
    hit_max_tokens: int
    tokens_match: bool  # the instrumented run produced the same tokens as the plain call
    memory: dict
    ttft_method: str
    settings: dict
    vs_faster_whisper: float | None = None
    vs_faster_whisper_ref: str | None = None
    vs_hf_generate: float | None = None
    vs_hf_generate_ref: str | None = None
    tokens_vs_faster_whisper: float | None = None  # new_tokens / the faster-whisper row's new_tokens


@dataclass
class InferBenchResult:
    kind: str
    config: dict
    environment: dict
    workload: dict
    rows: list[InferRow]
    errors: list[dict]
    checks: dict
    definitions: dict
    wall_s: float
    command: str | None = None
    notes: list[str] = field(default_factory=list)


DEFINITIONS = {
    "latency_ms": "wall time of one batch, audio in -> text out (features, encoder, decoding, detokenising)",
    "per_clip_ms": "wall time of a round / number of clips",
    "ttft_ms": "time to first token: features + encoder + first decoder step",
    "tpot_ms": "mean time of each later decoder step (the EOS step included)",
    "tokens_per_s": "text tokens produced / wall time",
    "rtfx": "audio seconds / wall seconds",
    "consistency_err": "|(TTFT + (n-1) * TPOT) - latency| / latency, n = decoder steps of the batch",
    "memory": "weights_mb: parameter + buffer bytes (torch rows); load_*: growth while loading the system (RSS "
              "undercounts weights that are memory-mapped and not yet read); run_rss_delta_mb / peak_*: growth and "
              "highest value during its rounds (RSS sampled every 10 ms; all systems share one process, so peak_rss_mb "
              "includes the others' weights); GPU: torch max_memory_allocated/reserved after a reset, device used = "
              "total - free (sees CTranslate2 too); MB = 10^6 bytes",
    "ratios": "vs_*: this row's median RTFx / the peer row's median RTFx at the same batch size (>1: faster)",
}


def resolve_device(device: str) -> str:
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def plan_runners(cfg: InferBenchConfig, device: str, threads: int) -> list[Runner]:
    """Every system of the run, soritune's first (their CTranslate2 directory feeds faster-whisper)."""
    kind = "cuda" if device.startswith("cuda") else "cpu"
    common = dict(device=device, language=cfg.language, task=cfg.task, max_new_tokens=cfg.max_new_tokens)
    runners: list[Runner] = []
    for backend in cfg.backends:
        dts = [d for d in (cfg.dtypes or DEFAULT_DTYPES[kind][backend])
               if d in (TORCH_DTYPES if backend == "torch" else CT2_DTYPES)]
        for dt in dts:
            for ei in cfg.encoder_inputs:
                if backend == "torch":
                    runners += [TorchRunner("soritune", "torch", dt, a, spec=cfg.model, adapter=cfg.adapter,
                                            encoder_input=ei, **common) for a in cfg.attn]
                else:
                    runners.append(CT2Runner("soritune", "ct2", dt, spec=cfg.model, adapter=cfg.adapter,
                                             threads=threads, encoder_input=ei, **common))
    if "faster-whisper" in cfg.peers:
        ct2_dts = list(dict.fromkeys(r.dtype for r in runners if r.backend == "ct2")) or DEFAULT_DTYPES[kind]["ct2"]
        runners += [FasterWhisperRunner("faster-whisper", "faster-whisper", dt, threads=threads, **common)
                    for dt in ct2_dts]
    if "hf-generate" in cfg.peers:
        runners += [HFRunner("hf-generate", "hf", dt, a, spec=cfg.model, adapter=cfg.adapter, **common)
                    for dt in cfg.hf_dtypes for a in cfg.attn]
    return runners


def _ct2_dir(cfg: InferBenchConfig, loaded: list[Runner], keep: list) -> str:
    for r in loaded:
        if isinstance(r, CT2Runner):
            return r.ct2_dir
    from soritune.infer import load_backend

    be = load_backend(cfg.model, backend="ct2", adapter=cfg.adapter)  # converts when needed; kept alive
    keep.append(be)
    return str(be.ct2_dir)


def load_runners(cfg: InferBenchConfig, runners: list[Runner], device: str, errors: list[dict],
                 progress: Callable[[dict], None] | None = None) -> tuple[list[Runner], dict, list]:
    """Load each runner (memory measured around the load); a runner that fails becomes an error entry."""
    loaded, load_mem, keep = [], {}, []
    for r in runners:
        if progress:
            progress({"event": "load", "label": r.label})
        meter = MemoryMeter(device, interval_s=0.01).start()
        try:
            if isinstance(r, FasterWhisperRunner):
                r.ct2_dir = _ct2_dir(cfg, loaded, keep)
            r.load()
        except Exception as e:  # noqa: BLE001 - one system failing must not lose the others
            meter.stop()
            errors.append({"key": r.key, "label": r.label, "stage": "load", "error": f"{type(e).__name__}: {e}"})
            continue
        m = meter.stop()
        load_mem[r.key] = {"weights_mb": _r(r.weights_mb), "load_rss_mb": round(m.rss_delta_mb, 1),
                           "load_gpu_allocated_mb": _r(m.gpu_allocated_delta_mb),
                           "load_gpu_device_used_mb": _r(m.gpu_device_used_delta_mb)}
        loaded.append(r)
    return loaded, load_mem, keep


def _r(x, nd: int = 1):
    return None if x is None else round(x, nd)


@dataclass
class _Round:
    e2e: list  # BatchRun per batch
    steps: list  # (StepTiming, tokens) per batch
    memory: object


def _measure_round(runner: Runner, batches: list[list], device: str) -> _Round:
    meter = MemoryMeter(device, interval_s=0.01).start()
    try:
        e2e = [runner.e2e(b) for b in batches]
        steps = [runner.steps(b) for b in batches]
    finally:
        mem = meter.stop()
    return _Round(e2e, steps, mem)


def _round_stats(rd: _Round, n_clips: int, audio_s: float) -> dict:
    lat = [e.latency_s for e in rd.e2e]
    wall = sum(lat)
    timings = [st for st, _ in rd.steps]
    extra = sum(t.n_steps - 1 for t in timings if t.tpot_s is not None)
    tpot = sum(t.tpot_s * (t.n_steps - 1) for t in timings if t.tpot_s is not None) / extra if extra else None
    pred = [predicted_latency_s(t.ttft_s, t.tpot_s, t.n_steps) for t in timings]
    tokens = sum(len(t) for e in rd.e2e for t in e.tokens)
    return {"latency_ms": 1000 * statistics.fmean(lat), "per_clip_ms": 1000 * wall / n_clips,
            "ttft_ms": 1000 * statistics.fmean(t.ttft_s for t in timings),
            "tpot_ms": None if tpot is None else 1000 * tpot,
            "tokens_per_s": tokens / wall, "rtfx": audio_s / wall,
            "predicted_latency_ms": 1000 * statistics.fmean(pred),
            "n_steps": statistics.fmean(t.n_steps for t in timings), "tokens": tokens,
            "hit_max": sum(e.hit_max for e in rd.e2e),
            "match": all(e.tokens == toks for e, (_, toks) in zip(rd.e2e, rd.steps))}


def _memory_summary(load: dict, rounds: list[_Round]) -> dict:
    mems = [rd.memory for rd in rounds]
    out = dict(load)
    out.update(peak_rss_mb=_r(max(m.peak_rss_mb for m in mems)), run_rss_delta_mb=_r(max(m.rss_delta_mb for m in mems)),
               max_rss_mb=_r(max(m.max_rss_mb for m in mems)))
    if mems and mems[0].gpu_peak_allocated_mb is not None:
        out.update(gpu_peak_allocated_mb=_r(max(m.gpu_peak_allocated_mb for m in mems)),
                   gpu_peak_reserved_mb=_r(max(m.gpu_peak_reserved_mb for m in mems)),
                   gpu_peak_device_used_mb=_r(max(m.gpu_peak_device_used_mb for m in mems)),
                   gpu_run_allocated_delta_mb=_r(max(m.gpu_allocated_delta_mb for m in mems)))
    return out


def make_row(runner: Runner, bs: int, rounds: list[_Round], load_mem: dict, n_clips: int, audio_s: float) -> InferRow:
    stats = [_round_stats(rd, n_clips, audio_s) for rd in rounds]
    s = {k: summarize(x[k] for x in stats) for k in ("latency_ms", "per_clip_ms", "ttft_ms", "tpot_ms",
                                                    "tokens_per_s", "rtfx", "predicted_latency_ms")}
    return InferRow(
        key=runner.key, label=runner.label, system=runner.system, backend=runner.backend, dtype=runner.dtype,
        attn=runner.attn, batch_size=bs, device=runner.device, n_clips=n_clips, audio_s=round(audio_s, 3),
        latency_ms=s["latency_ms"], per_clip_ms=s["per_clip_ms"], ttft_ms=s["ttft_ms"], tpot_ms=s["tpot_ms"],
        tokens_per_s=s["tokens_per_s"], rtfx=s["rtfx"], predicted_latency_ms=s["predicted_latency_ms"],
        consistency_err=relative_error(s["predicted_latency_ms"]["median"], s["latency_ms"]["median"]),
        n_steps_mean=round(statistics.fmean(x["n_steps"] for x in stats), 2), new_tokens=stats[-1]["tokens"],
        hit_max_tokens=stats[-1]["hit_max"], tokens_match=all(x["match"] for x in stats),
        memory=_memory_summary(load_mem.get(runner.key, {}), rounds), ttft_method=runner.ttft_method,
        settings=dict(runner.settings),
    )


def add_ratios(rows: list[InferRow]) -> None:
    """vs_faster_whisper: the faster-whisper row of the same compute type; vs_hf_generate: HF float32
    eager (else float32 sdpa); both at the same batch size."""
    def rtfx(r):
        return r.rtfx["median"]

    for bs in {r.batch_size for r in rows}:
        at = [r for r in rows if r.batch_size == bs]
        fw = {r.dtype: r for r in at if r.system == "faster-whisper"}
        hf = {(r.dtype, r.attn): r for r in at if r.system == "hf-generate"}
        hf_ref = hf.get(("float32", "eager")) or hf.get(("float32", "sdpa"))
        for r in at:
            ref = fw.get(r.dtype)
            if ref is not None and ref is not r and rtfx(ref):
                r.vs_faster_whisper, r.vs_faster_whisper_ref = rtfx(r) / rtfx(ref), ref.label
                r.tokens_vs_faster_whisper = r.new_tokens / ref.new_tokens if ref.new_tokens else None
            if hf_ref is not None and hf_ref is not r and rtfx(hf_ref):
                r.vs_hf_generate, r.vs_hf_generate_ref = rtfx(r) / rtfx(hf_ref), hf_ref.label


def targets(rows: list[InferRow], batch_size: int = 1) -> dict:
    """The issue's targets at batch 1: fastest soritune >= 1.0x faster-whisper and >= 3x HF fp32 eager;
    TTFT/TPOT reported everywhere; TTFT + (n-1) TPOT within 10% of latency."""
    at = [r for r in rows if r.batch_size == batch_size]
    ours = [r for r in at if r.system == "soritune"]
    fws = [r for r in at if r.system == "faster-whisper"]
    hf = [r for r in at if r.system == "hf-generate" and r.dtype == "float32" and r.attn == "eager"]
    out: dict = {"batch_size": batch_size}
    if ours:
        best = max(ours, key=lambda r: r.rtfx["median"])
        out.update(fastest_soritune=best.label, fastest_soritune_rtfx=best.rtfx["median"],
                   vs_faster_whisper_same_dtype=best.vs_faster_whisper)
        padded = [r for r in ours if "trimmed" not in r.key]
        if fws and padded and len(padded) < len(ours):  # the like-for-like figure: 30-s input on both sides
            pbest = max(padded, key=lambda r: r.rtfx["median"])
            out.update(fastest_soritune_padded=pbest.label, vs_fastest_faster_whisper_padded=pbest.rtfx["median"] /
                       max(r.rtfx["median"] for r in fws))
        if fws:
            fw_best = max(fws, key=lambda r: r.rtfx["median"])
            out.update(fastest_faster_whisper=fw_best.label,
                       vs_fastest_faster_whisper=best.rtfx["median"] / fw_best.rtfx["median"])
            out["target_faster_whisper_1x"] = out["vs_fastest_faster_whisper"] >= 1.0
        if hf:
            out["vs_hf_generate_fp32_eager"] = best.rtfx["median"] / hf[0].rtfx["median"]
            out["target_hf_generate_3x"] = out["vs_hf_generate_fp32_eager"] >= 3.0
    out["ttft_tpot_reported_all"] = all(r.ttft_ms["median"] is not None and
                                        (r.tpot_ms["median"] is not None or r.n_steps_mean <= 1) for r in rows)
    errs = [r.consistency_err for r in rows if r.consistency_err is not None]
    out["max_consistency_err"] = max(errs) if errs else None
    out["consistency_within_10pct"] = bool(errs) and max(errs) <= CONSISTENCY_TOLERANCE
    return out


def _preimport(cfg: InferBenchConfig) -> None:
    """Import the engines before any load is measured, so no system's load memory includes them."""
    import ctranslate2  # noqa: F401
    from transformers import WhisperForConditionalGeneration, WhisperProcessor  # noqa: F401

    if "faster-whisper" in cfg.peers:
        import faster_whisper  # noqa: F401


def run(config: InferBenchConfig | dict, progress: Callable[[dict], None] | None = None,
        command: str | None = None) -> InferBenchResult:
    """Run the benchmark and write bench.json / bench.md / plots into config.out."""
    import os

    from soritune.bench import workload as wl_mod
    from soritune.bench.report import write_section
    from soritune.config import validate
    from soritune.environment import environment

    cfg = config if isinstance(config, InferBenchConfig) else validate(InferBenchConfig, dict(config))
    t_start = time.perf_counter()
    device = resolve_device(cfg.device)
    threads = cfg.threads or os.cpu_count() or 1
    import torch

    torch.set_num_threads(threads)
    wl = wl_mod.from_manifest(cfg.manifest, cfg.limit) if cfg.manifest else wl_mod.synthetic(cfg.synthetic or 8)
    if not wl.audios:
        from soritune.errors import SoritunError

        raise SoritunError(f"bench infer: no usable clip in {wl.source} ({len(wl.skipped)} skipped)")
    errors: list[dict] = []
    _preimport(cfg)
    runners, load_mem, _keep = load_runners(cfg, plan_runners(cfg, device, threads), device, errors, progress)
    rows: list[InferRow] = []
    for bs in cfg.batch_sizes:
        batches = [wl.audios[i:i + bs] for i in range(0, len(wl.audios), bs)]
        live = list(runners)
        for r in list(live):
            for _ in range(cfg.warmup):
                try:
                    r.e2e(batches[0])
                    r.steps(batches[0])
                except Exception as e:  # noqa: BLE001
                    errors.append({"key": r.key, "label": r.label, "stage": f"warmup batch {bs}",
                                   "error": f"{type(e).__name__}: {e}"})
                    live.remove(r)
                    break
            if progress:
                progress({"event": "warmup", "label": r.label, "batch_size": bs})
        rounds: dict[str, list[_Round]] = {r.key: [] for r in live}
        for rep in range(cfg.repeats):
            k = rep % max(len(live), 1)
            for r in live[k:] + live[:k]:
                if r.key not in rounds:
                    continue
                try:
                    rounds[r.key].append(_measure_round(r, batches, device))
                except Exception as e:  # noqa: BLE001
                    errors.append({"key": r.key, "label": r.label, "stage": f"batch {bs} round {rep}",
                                   "error": f"{type(e).__name__}: {e}"})
                    rounds.pop(r.key)
                if progress:
                    progress({"event": "round", "label": r.label, "batch_size": bs, "round": rep})
        rows += [make_row(r, bs, rounds[r.key], load_mem, len(wl.audios), wl.audio_s) for r in live if r.key in rounds]
    add_ratios(rows)
    result = InferBenchResult(
        kind="infer", config=cfg.model_dump(), environment=environment(device, threads), workload=wl.describe(),
        rows=rows, errors=errors, checks=targets(rows, min(cfg.batch_sizes)), definitions=DEFINITIONS,
        wall_s=round(time.perf_counter() - t_start, 1), command=command)
    write_section("infer", result, cfg.out, plots=cfg.plots, config=cfg)
    return result
