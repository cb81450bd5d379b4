"""`soritune speechllm bench`: TTFT, TPOT, total time and peak memory of a speech LLM, per attention kernel.

Two protocols, each a row per attention implementation:
- `study` (the lightening study's): batch 1, `audio_s` of audio; TTFT = encode audio + wrap the prompt +
  one LLM prefill forward; TPOT = one decode step with the KV cache (median of `decode_steps` steps);
  memory = peak during the protocol.
- `generate`: the same audio through transformers `generate` (greedy, KV cache, exactly `max_new_tokens`
  tokens so random weights decode as long as real ones); TTFT = audio in -> first token, TPOT = mean of the
  later steps (soritune.bench.timing.StepStreamer), total_ms = the whole call.

peak_mem_gb: CUDA: torch.cuda.max_memory_allocated during the phase (the study's figure). CPU: the
process's peak resident set during the phase (weights included, sampled by soritune.bench.memory), with
the growth over the phase's start in peak_mem_delta_gb; each row says which in `peak_mem_definition`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Literal

import numpy as np
from pydantic import Field

from soritune.bench.memory import MemoryMeter
from soritune.bench.report import _f, _table
from soritune.bench.timing import StepStreamer, clock, summarize
from soritune.config import StageConfig
from soritune.environment import describe_device, environment
from soritune.jsonio import atomic_write_text, to_jsonable, write_json
from soritune.speechllm.config import DEFAULT_PROMPTS, ENCODER_SPEC, LLM_SPEC, Projector, SpeechLLMConfig

GB = 1000.0  # soritune.bench.memory reports MB = 10^6 bytes: GB = 10^9 bytes


class SpeechLLMBenchConfig(StageConfig):
    """What to measure; the model is composed from encoder + projector + llm as in SpeechLLMConfig."""

    encoder: str = Field("random:large-v3-turbo", description=ENCODER_SPEC)
    llm: str = Field("random:qwen2.5-0.5b", description=LLM_SPEC)
    projector: Projector = Field("salmonn", description="Projector.")
    run_dir: str | None = Field(None, description="A trained model (run dir/model) instead of encoder/llm.")
    out: str = Field("bench_speechllm", description="Output directory (bench.json, bench.md).")
    audio_s: float = Field(10.0, gt=0, description="Seconds of audio per request (the study: 10).")
    attn: list[Literal["eager", "sdpa", "flash_attention_2"]] = Field(["eager", "sdpa"], description="LLM attention kernels "
                                                                                  "(flash_attention_2 on a GPU)")
    protocols: list[Literal["study", "generate"]] = Field(["study", "generate"], description="study (TTFT = encode "
                                                              "+ wrap + prefill; TPOT = one cached decode step) and/or generate (full generation)")
    repeats: int = Field(3, ge=1, description="Measured repeats (median reported, min kept).")
    warmup: int = Field(1, ge=0, description="Warm-up runs per row.")
    decode_steps: int = Field(8, ge=1, description="Decode steps timed per repeat in the study protocol.")
    max_new_tokens: int = Field(16, ge=2, description="Tokens generated per request in the generate protocol.")
    threads: int | None = Field(None, ge=1, description="torch CPU threads.")
    device: str = Field("cpu", description="cpu | cuda | cuda:N.")
    dtype: Literal["float32", "bfloat16", "float16"] = Field("float32", description="Weights and activations.")


def bench_audio(seconds: float, seed: int = 0) -> np.ndarray:
    """Deterministic speech-like audio (modulated harmonics + noise) of the given length."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * 16000)) / 16000
    voice = sum(np.sin(2 * np.pi * f * t) / k for k, f in enumerate((140, 280, 420, 560), 1))
    return (0.1 * voice * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t)) + 0.01 * rng.standard_normal(t.size)).astype(np.float32)


def prefill(model, audio: np.ndarray, prompt: str):
    """Encode + wrap + one LLM forward over the whole prompt: (next-token logits, KV cache, prompt length)."""
    import torch

    with torch.no_grad():
        batch = model.build_inputs([audio], [prompt])
        out = model.llm(inputs_embeds=batch["inputs_embeds"], attention_mask=batch["attention_mask"], use_cache=True)
    return out.logits[:, -1], out.past_key_values, batch["inputs_embeds"].shape[1]


def decode_step(model, token_id: int, past, position: int):
    """One decode step with the KV cache: (logits, updated cache)."""
    import torch

    ids = torch.tensor([[token_id]], device=model.device)
    mask = torch.ones(1, position + 1, dtype=torch.long, device=model.device)
    with torch.no_grad():
        out = model.llm(input_ids=ids, attention_mask=mask, past_key_values=past, use_cache=True)
    return out.logits[:, -1], out.past_key_values


def _peak(reading, device: str) -> dict:
    if reading.gpu_peak_allocated_mb is not None:
        return {"peak_mem_gb": round(reading.gpu_peak_allocated_mb / GB, 3),
                "peak_mem_delta_gb": round((reading.gpu_allocated_delta_mb or 0) / GB, 3),
                "peak_mem_definition": "torch.cuda.max_memory_allocated during the protocol"}
    return {"peak_mem_gb": round(reading.peak_rss_mb / GB, 3), "peak_mem_delta_gb": round(reading.rss_delta_mb / GB, 3),
            "peak_mem_definition": "CPU: peak process RSS during the protocol (weights included); delta = growth"}


def _study(model, audio, prompt, cfg, device) -> dict:
    ttft, tpot = [], []
    for i in range(cfg.warmup + cfg.repeats):
        t0 = clock(device)
        logits, past, pos = prefill(model, audio, prompt)
        tok = int(logits.argmax(-1))
        t1 = clock(device)
        steps = []
        for _ in range(cfg.decode_steps):
            s0 = clock(device)
            logits, past = decode_step(model, tok, past, pos)
            tok, pos = int(logits.argmax(-1)), pos + 1
            steps.append(clock(device) - s0)
        if i >= cfg.warmup:
            ttft.append(t1 - t0)
            tpot.extend(steps)
    return {"ttft": summarize(ttft), "tpot": summarize(tpot), "prompt_tokens": pos - cfg.decode_steps}


def _generate(model, audio, prompt, cfg, device) -> dict:
    import torch

    ttft, tpot, total, n_tokens = [], [], [], []
    for i in range(cfg.warmup + cfg.repeats):
        streamer = StepStreamer(device)
        t0 = clock(device)
        batch = model.build_inputs([audio], [prompt])
        with torch.no_grad():
            out = model.llm.generate(inputs_embeds=batch["inputs_embeds"], attention_mask=batch["attention_mask"],
                                     max_new_tokens=cfg.max_new_tokens, min_new_tokens=cfg.max_new_tokens,
                                     do_sample=False, streamer=streamer, pad_token_id=model.tokenizer.pad_token_id)
        t_end = clock(device)
        steps = streamer.step_times()
        if i >= cfg.warmup:
            ttft.append(steps[0] - t0)
            tpot.append((steps[-1] - steps[0]) / (len(steps) - 1))
            total.append(t_end - t0)
            n_tokens.append(int(out.shape[1]))
    return {"ttft": summarize(ttft), "tpot": summarize(tpot), "total": summarize(total),
            "new_tokens": n_tokens[0] if n_tokens else None}


def _row(protocol: str, attn: str, timed: dict, reading, device: str) -> dict:
    ms = lambda s: None if s["median"] is None else round(s["median"] * 1000, 3)  # noqa: E731
    row = {"protocol": protocol, "attn": attn, "ttft_ms": ms(timed["ttft"]), "tpot_ms": ms(timed["tpot"]),
           "ttft_min_ms": None if timed["ttft"]["min"] is None else round(timed["ttft"]["min"] * 1000, 3),
           "tpot_min_ms": None if timed["tpot"]["min"] is None else round(timed["tpot"]["min"] * 1000, 3),
           "total_ms": ms(timed["total"]) if "total" in timed else None, **_peak(reading, device)}
    row.update({k: v for k, v in timed.items() if k in ("prompt_tokens", "new_tokens")})
    return row


def run_bench(cfg: SpeechLLMBenchConfig, *, progress: Callable[[str], None] | None = None, model=None) -> dict:
    """Measure every (protocol, attention) row; write OUT/bench.json and OUT/bench.md; return the document."""
    import torch

    from soritune.speechllm.model import SpeechLLM

    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    device = cfg.device
    if model is None:
        if cfg.run_dir:
            model = SpeechLLM.load(Path(cfg.run_dir) / "model" if (Path(cfg.run_dir) / "model").is_dir()
                                   else cfg.run_dir)
        else:
            model = SpeechLLM(SpeechLLMConfig(encoder=cfg.encoder, llm=cfg.llm, projector=cfg.projector))
    dtype = getattr(torch, cfg.dtype)
    keep_llm = model.config.llm_quantization or model.decoding_dtype  # bitsandbytes, or a decoding form: as is
    for m in (model.projector, model.encoder.module) + (() if keep_llm else (model.llm,)):
        m.to(device=device, dtype=dtype)
    model.train(False)
    audio, prompt = bench_audio(cfg.audio_s), DEFAULT_PROMPTS["transcribe"]
    info = model.audio_embeddings([audio])[1][0]
    rows = []
    for attn in cfg.attn:
        model.llm.set_attn_implementation(attn)
        for protocol in cfg.protocols:
            if progress:
                progress(f"{protocol} / {attn}")
            with MemoryMeter(device) as meter:
                timed = (_study if protocol == "study" else _generate)(model, audio, prompt, cfg, device)
            rows.append(_row(protocol, attn, timed, meter.reading, device))
    env = environment(device, threads=torch.get_num_threads())
    doc = {"schema_version": 1, "kind": "speechllm", "config": cfg.model_dump(), "model": model.describe(),
           "llm_dtype": model.llm_dtype,
           "audio": {"audio_s": info.audio_s, "n_chunks": info.n_chunks, "n_audio_tokens": info.n_audio_tokens,
                     "truncated_s": info.truncated_s},
           "device_name": describe_device(env), "environment": env, "rows": rows}
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "bench.json", doc)
    atomic_write_text(out / "bench.md", render_markdown(doc))
    return to_jsonable(doc)


def render_markdown(doc: dict) -> str:
    m = doc["model"]["config"]
    lines = [f"# Speech LLM bench: {m['encoder']} + {m['projector']} + {m['llm']}", "",
             f"- {doc['device_name']}; {doc['config']['dtype']} (LLM {doc.get('llm_dtype', doc['config']['dtype'])}); batch 1; {doc['audio']['audio_s']:.1f} s audio "
             f"-> {doc['audio']['n_audio_tokens']} audio tokens ({doc['audio']['n_chunks']} encoder pass(es), "
             f"{doc['audio']['truncated_s']} s truncated)",
             f"- load average (1/5/15 min) at the end: {doc['environment'].get('load_average_1_5_15')}", ""]
    body = [[r["protocol"], r["attn"], _f(r["ttft_ms"]), _f(r["tpot_ms"]), _f(r.get("total_ms")),
             _f(r["peak_mem_gb"], 2), _f(r["peak_mem_delta_gb"], 2)] for r in doc["rows"]]
    lines += _table(["protocol", "attention", "TTFT ms", "TPOT ms", "total ms", "peak mem GB", "growth GB"], body)
    lines += ["", "study: TTFT = encode + wrap prompt + one prefill forward; TPOT = one KV-cached decode step. "
              "generate: transformers generate, exactly the token count in the config. "
              + (doc["rows"][0]["peak_mem_definition"] if doc["rows"] else ""), ""]
    return "\n".join(lines)
