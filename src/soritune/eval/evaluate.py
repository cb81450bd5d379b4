"""The `eval` stage: transcribe a manifest with a model, then score it exactly as `score` does.

    from soritune.eval import EvalConfig, run_eval
    report = run_eval(EvalConfig(model="bundled:whisper-base", manifest="test.jsonl", out="eval/"))

Greedy decoding with the language and task forced (no language detection), or `decode:` (a
DecodeOptions: beam search, temperature fallback, prompt, ...). Utterances longer
than 30 s are cut at pauses and their pieces joined. Writes out/report.json (the score report
plus `model`, `decoding`, `timing` with RTFx, `audio_errors`), report.md, utterances.tsv,
hypotheses.jsonl (re-scorable with `soritune score`), config.yaml, and errors.jsonl when some
audio could not be read (those utterances are listed there and left out of the metrics).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Literal

import numpy as np
from pydantic import Field

from soritune.config import StageConfig
from soritune.eval.bootstrap import DEFAULT_N_BOOT, DEFAULT_SEED
from soritune.eval.io import HYPOTHESES_FILE
from soritune.eval.score import ScoreReport, score_texts
from soritune.infer.options import MAX_NEW_TOKENS, DecodeOptions
from soritune.models.encoder import ENCODER_INPUT_HELP, EncoderInput

CHUNK_S = 30.0


class EvalConfig(StageConfig):
    """Inputs and options of `soritune eval`."""

    model: str = Field(description="model spec: bundled:whisper-base, hf:ID_OR_DIR, ct2:DIR, tiny:")
    manifest: Path = Field(description="manifest to transcribe and score (id, audio, duration, text)")
    out: Path = Field(description="output directory")
    adapter: Path | None = Field(None, description="PEFT adapter directory applied (merged) on the model")
    backend: Literal["torch", "ct2", "vosk"] = Field(
        "torch", description="transcription backend (vosk: an independent Kaldi peer, --model vosk:ko)")
    device: str = Field("cpu", description="cpu, cuda or cuda:N")
    compute_type: str | None = Field(None, description="torch: float32|float16|bfloat16; ct2: int8|float16|...")
    encoder_input: EncoderInput = Field("padded", description=ENCODER_INPUT_HELP)
    batch_size: int = Field(8, ge=1, description="clips per generate() call")
    threads: int | None = Field(None, ge=1, description="CPU threads of the backend (default: its own choice)")
    limit: int | None = Field(None, ge=1, description="score only the first N manifest rows")
    language: str = Field("ko", description="forced language code (no detection)")
    task: Literal["transcribe", "translate"] = Field("transcribe", description="forced Whisper task")
    max_new_tokens: int = Field(MAX_NEW_TOKENS, ge=1, le=MAX_NEW_TOKENS, description="generation limit per clip")
    decode: DecodeOptions | None = Field(None, description="decoding beyond greedy (beam, fallback, prompt; "
                                         "language, task, max_new_tokens and batch_size come from the fields above)")
    slice_by: list[str] = Field(default_factory=list, description="manifest fields to slice metrics by")
    load_block: int = Field(256, ge=1, description="utterances decoded into memory at a time")
    n_boot: int = Field(DEFAULT_N_BOOT, ge=10, description="bootstrap resamples for the 95% intervals")
    seed: int = Field(DEFAULT_SEED, description="bootstrap seed")
    max_audio_error_fraction: float = Field(0.0, ge=0, le=1, description="fail (after writing the report) if more of the rows' audio is unreadable")


@dataclass
class Hypotheses:
    """Model output for a manifest: texts and token meta by id, unreadable audio, timing."""

    texts: dict[str, str] = field(default_factory=dict)
    meta: dict[str, dict] = field(default_factory=dict)
    audio_errors: list[dict] = field(default_factory=list)
    audio_s: float = 0.0
    model_wall_s: float = 0.0
    wall_s: float = 0.0


class _AudioCache:
    """Load a row's audio; segments (offset/duration) of one long file reuse its decoded samples."""

    def __init__(self) -> None:
        self.path: str | None = None
        self.audio: np.ndarray | None = None

    def load(self, row: dict) -> np.ndarray:
        from soritune.audio import SAMPLE_RATE, load_audio

        if row["audio"] != self.path:
            self.path, self.audio = None, None
            self.audio = load_audio(row["audio"])
            self.path = row["audio"]
        audio = self.audio
        offset = row.get("offset")
        if offset is None:
            return audio
        start = int(round(float(offset) * SAMPLE_RATE))
        end = start + int(round(float(row["duration"]) * SAMPLE_RATE))
        return audio[start:end]


def transcribe_rows(rows: list[dict], backend, config: EvalConfig,
                    progress: Callable[[int], None] | None = None) -> Hypotheses:
    """Transcribe manifest rows in blocks of `load_block`; progress(n_rows_done) after each block."""
    from soritune.audio import SAMPLE_RATE, chunk_audio
    from soritune.errors import AudioError

    hyps = Hypotheses()
    cache = _AudioCache()
    start = time.perf_counter()
    for b in range(0, len(rows), config.load_block):
        block = rows[b:b + config.load_block]
        clips, owners = [], []
        for row in block:
            try:
                audio = cache.load(row)
            except AudioError as e:
                hyps.audio_errors.append({"id": row["id"], "audio": row["audio"], "reason": e.reason,
                                          "detail": e.detail})
                continue
            if len(audio) == 0:
                hyps.audio_errors.append({"id": row["id"], "audio": row["audio"], "reason": "empty",
                                          "detail": "no samples in the offset/duration window"})
                continue
            hyps.audio_s += len(audio) / SAMPLE_RATE
            for ch in chunk_audio(audio, max_s=CHUNK_S):
                clips.append(ch.audio)
                owners.append(row["id"])
        t0 = time.perf_counter()
        options = {"options": decode_options(config)} if config.decode else {}
        outs = backend.transcribe(clips, language=config.language, task=config.task, batch_size=config.batch_size,
                                  max_new_tokens=config.max_new_tokens, **options) if clips else []
        hyps.model_wall_s += time.perf_counter() - t0
        for uid, out in zip(owners, outs):
            prev = hyps.meta.get(uid)
            if prev is None:
                hyps.texts[uid] = out.text.strip()
                hyps.meta[uid] = {"n_tokens": out.n_tokens, "hit_max_tokens": bool(out.hit_max_tokens)}
            else:  # a later piece of a long utterance
                hyps.texts[uid] = " ".join(p for p in (hyps.texts[uid], out.text.strip()) if p)
                prev["n_tokens"] += out.n_tokens
                prev["hit_max_tokens"] = prev["hit_max_tokens"] or bool(out.hit_max_tokens)
        if progress:
            progress(len(block))
    hyps.wall_s = time.perf_counter() - start
    return hyps


def decode_options(config: EvalConfig) -> DecodeOptions:
    """config.decode with the language, task, batch size and token limit of the eval config."""
    return (config.decode or DecodeOptions()).model_copy(update=dict(
        language=config.language, task=config.task, batch_size=config.batch_size,
        max_new_tokens=min(config.max_new_tokens, MAX_NEW_TOKENS)))


def _decoding(config: EvalConfig) -> dict:
    if config.decode:
        return {**decode_options(config).describe(), "num_beams": config.decode.beam_size, "chunk_s": CHUNK_S,
                "backend": config.backend, "encoder_input": config.encoder_input}
    return {"strategy": "greedy", "num_beams": 1, "temperature_fallback": False, "language": config.language,
            "task": config.task, "max_new_tokens": config.max_new_tokens, "batch_size": config.batch_size,
            "chunk_s": CHUNK_S, "backend": config.backend,
            "encoder_input": config.encoder_input}


def run_eval(config: EvalConfig, progress: Callable[[int, int], None] | None = None) -> ScoreReport:
    """Load the model, transcribe the manifest, score with score_texts, write the report directory.

    progress(done, total) is called with manifest rows transcribed so far."""
    from soritune.data.manifest import read_manifest
    from soritune.eval.scoring import check_slice_fields, finish_report
    from soritune.infer import load_backend
    from soritune.jsonio import write_jsonl

    rows = read_manifest(config.manifest, limit=config.limit)
    check_slice_fields(rows, config.slice_by)
    t0 = time.perf_counter()
    adapter = str(config.adapter) if config.adapter else None
    backend = load_backend(config.model, backend=config.backend, adapter=adapter, device=config.device,
                           compute_type=config.compute_type, encoder_input=config.encoder_input,
                           threads=config.threads)
    load_s = time.perf_counter() - t0
    done = 0

    def step(n: int) -> None:
        nonlocal done
        done += n
        if progress:
            progress(done, len(rows))

    hyps = transcribe_rows(rows, backend, config, progress=step)
    failed = {e["id"] for e in hyps.audio_errors}
    scored = [r for r in rows if r["id"] not in failed]
    report = score_texts(scored, hyps.texts, hyp_meta=hyps.meta, n_boot=config.n_boot, seed=config.seed)
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    write_jsonl(out / HYPOTHESES_FILE, [{"id": r["id"], "text": hyps.texts[r["id"]], **hyps.meta[r["id"]]}
                                        for r in scored])
    if hyps.audio_errors:
        write_jsonl(out / "errors.jsonl", hyps.audio_errors)
    report.extra.update({
        "model": backend.describe(),
        "decoding": _decoding(config),
        "timing": {"load_s": round(load_s, 3), "audio_s": round(hyps.audio_s, 3),
                   "model_wall_s": round(hyps.model_wall_s, 3), "wall_s": round(hyps.wall_s, 3),
                   "rtfx": round(hyps.audio_s / hyps.model_wall_s, 3) if hyps.model_wall_s > 0 else None,
                   "rtfx_end_to_end": round(hyps.audio_s / hyps.wall_s, 3) if hyps.wall_s > 0 else None},
        "inputs": {"manifest": str(config.manifest), "n_rows": len(rows), "n_audio_errors": len(hyps.audio_errors)},
        "audio_errors": hyps.audio_errors[:100],
    })
    return finish_report(report, scored, out, config, config.slice_by, title=f"soritune eval: {config.model}",
                         failure=_audio_failure(hyps.audio_errors, len(rows), config.max_audio_error_fraction))


def _audio_failure(errors: list[dict], n_rows: int, max_fraction: float) -> str | None:
    """The reason to fail an eval for unreadable audio (see errors.jsonl), or None."""
    if n_rows and len(errors) == n_rows:
        return f"no utterance was scored: the audio of all {n_rows} rows could not be read (errors.jsonl)"
    if n_rows and len(errors) / n_rows > max_fraction:
        return (f"{len(errors)} of {n_rows} rows have unreadable audio ({len(errors) / n_rows:.1%} > "
                f"max_audio_error_fraction {max_fraction:g}; errors.jsonl); metrics cover the rest")
    return None
