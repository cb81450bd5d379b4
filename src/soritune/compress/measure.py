"""Measurement shared by prune, distill and export: clips, CER, latency (RTFx), parity.

Decoding is greedy with the language and task forced, through the same `infer` backends as
`soritune transcribe`/`eval`, so numbers here compare with theirs. Latency is the median of
`repeats` timed passes over the same clips after `warmup` untimed ones; RTFx = audio seconds /
wall seconds. CER is the set CER of `soritune.eval.metrics.cer` (fraction, spaces removed).
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field

import numpy as np

from soritune.audio import SAMPLE_RATE

PARITY_TEXTS = ("안녕하세요 오늘 강의를 시작하겠습니다", "미분 방정식의 해를 구해 봅시다", "삼 더하기 사는 칠입니다",
                "행렬의 곱은 교환 법칙이 성립하지 않습니다", "확률 분포를 그려 보겠습니다")


@dataclass
class Clips:
    """Utterances in memory: ids, reference texts, audio (16 kHz float32), skipped rows."""

    ids: list[str]
    texts: list[str]
    audios: list[np.ndarray]
    source: str
    skipped: list[dict] = field(default_factory=list)

    @property
    def audio_s(self) -> float:
        return sum(len(a) for a in self.audios) / SAMPLE_RATE

    def __len__(self) -> int:
        return len(self.ids)

    def rows(self) -> list[dict]:
        return [{"id": i, "text": t} for i, t in zip(self.ids, self.texts)]


def load_clips(manifest: str | None, limit: int | None = None, max_s: float = 30.0) -> Clips:
    """Rows of a manifest (<= max_s each, the first `limit`), or synthetic Korean sentences when
    no manifest is given. Unreadable or over-long rows are listed in `skipped` with a reason."""
    if manifest is None:
        return synthetic_clips(limit or 3)
    from soritune.data.dataset import load_segment
    from soritune.data.manifest import read_manifest
    from soritune.errors import AudioError

    ids, texts, audios, skipped = [], [], [], []
    for row in read_manifest(manifest):
        if limit is not None and len(ids) >= limit:
            break
        if row["duration"] > max_s:
            skipped.append({"id": row["id"], "reason": "too_long_audio", "detail": f"{row['duration']} s > {max_s} s"})
            continue
        try:
            audio = load_segment(row["audio"], row.get("offset"),
                                 row["duration"] if row.get("offset") is not None else None)
        except AudioError as e:
            skipped.append({"id": row["id"], "reason": e.reason, "detail": e.detail})
            continue
        ids.append(row["id"])
        texts.append(row["text"])
        audios.append(audio)
    return Clips(ids, texts, audios, str(manifest), skipped)


def synthetic_clips(n: int = 3) -> Clips:
    """n deterministic synthetic Korean sentences (espeak-ng), for parity checks without data."""
    from soritune.data.synth import VOICES, speak

    voices = [v for v in VOICES if v.startswith("ko")]
    texts = [PARITY_TEXTS[i % len(PARITY_TEXTS)] for i in range(n)]
    audios = [speak(t, voice=voices[i % len(voices)]) for i, t in enumerate(texts)]
    return Clips([f"synth-{i}" for i in range(n)], texts, audios, "synthetic")


def torch_backend(model, processor, spec: str = "in-memory", encoder_input: str = "padded"):
    from soritune.infer.torch_backend import TorchBackend

    return TorchBackend(model, processor, spec=spec, device="cpu", encoder_input=encoder_input)


def transcribe(backend, clips: Clips, *, batch_size: int = 8, max_new_tokens: int = 128,
               language: str = "ko") -> list[str]:
    import torch

    with torch.inference_mode():
        outs = backend.transcribe(clips.audios, language=language, batch_size=batch_size,
                                  max_new_tokens=max_new_tokens)
    return [o.text for o in outs]


def cer(refs: list[str], hyps: list[str]) -> float:
    from soritune.eval.metrics import cer as set_cer

    return float(set_cer(refs, hyps)) if refs else float("nan")


def time_decoding(backend, clips: Clips, *, repeats: int = 3, warmup: int = 1, batch_size: int = 8,
                  max_new_tokens: int = 128, language: str = "ko") -> dict:
    """Median and min wall seconds of transcribing all clips; RTFx from the median."""
    for _ in range(warmup):
        transcribe(backend, clips, batch_size=batch_size, max_new_tokens=max_new_tokens, language=language)
    times = []
    for _ in range(max(1, repeats)):
        t0 = time.perf_counter()
        transcribe(backend, clips, batch_size=batch_size, max_new_tokens=max_new_tokens, language=language)
        times.append(time.perf_counter() - t0)
    med = statistics.median(times)
    return {"median_s": round(med, 4), "min_s": round(min(times), 4), "repeats": len(times), "warmup": warmup,
            "audio_s": round(clips.audio_s, 3), "rtfx": round(clips.audio_s / med, 3) if med > 0 else None,
            "batch_size": batch_size, "threads": _threads()}


def _threads() -> int:
    import torch

    return torch.get_num_threads()


def score_model(backend, clips: Clips, *, batch_size: int = 8, max_new_tokens: int = 128,
                timing: bool = False, repeats: int = 3, warmup: int = 0) -> dict:
    """{"cer", "hyps", "timing"?} of a backend on clips."""
    hyps = transcribe(backend, clips, batch_size=batch_size, max_new_tokens=max_new_tokens)
    out = {"cer": cer(clips.texts, hyps), "n_utts": len(clips), "hyps": hyps}
    if timing:
        # the scoring pass above already warmed the backend up; `warmup` adds further untimed passes
        out["timing"] = time_decoding(backend, clips, repeats=repeats, warmup=warmup, batch_size=batch_size,
                                      max_new_tokens=max_new_tokens)
    return out


def parity(ref_hyps: list[str], new_hyps: list[str], clips: Clips) -> dict:
    """Transcript parity of an exported model against its source on the same clips."""
    equal = [a.strip() == b.strip() for a, b in zip(ref_hyps, new_hyps)]
    cer_src = cer(clips.texts, ref_hyps)
    cer_new = cer(clips.texts, new_hyps)
    return {
        "n_utts": len(clips), "source": clips.source, "n_equal": sum(equal), "all_equal": all(equal),
        "cer_between": cer(ref_hyps, new_hyps) if any(h.strip() for h in ref_hyps) else None,
        "cer_source": cer_src, "cer_exported": cer_new, "cer_delta_points": round(100 * (cer_new - cer_src), 3),
        "utterances": [{"id": i, "source": a, "exported": b, "equal": e}
                       for i, a, b, e in zip(clips.ids, ref_hyps, new_hyps, equal)],
    }
