"""The audio a benchmark decodes: synthetic Korean clips (deterministic) or the rows of a manifest.

A manifest row that cannot be used (unreadable audio, longer than one 30-s window) is not dropped
silently: it lands in `Workload.skipped` with its reason, and the counts add up.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from pydantic import model_validator

from soritune.audio import SAMPLE_RATE
from soritune.config import StageConfig

MAX_CLIP_S = 30.0
# Lecture-style sentences read by espeak-ng's Korean voices at 140 words per minute. With the first
# voice, the bundled whisper-base ends its greedy output normally (no repetition loop up to the token
# cap) on each of them, with Hugging Face's and faster-whisper's feature extraction, in float32 and
# int8 (checked by hand; two sentences that looped on one system were dropped): a clip that loops on
# one system and not on another would make RTFx compare loops instead of systems. Later voices (N > 10)
# were not checked. Every report row carries its token count.
SENTENCES = (
    "오늘은 선형대수의 고유값 분해에 대해 알아보겠습니다.",
    "다음 주 수요일까지 과제를 제출해 주세요.",
    "이 식의 양변에 이를 곱하면 답이 나옵니다.",
    "행렬의 곱셈은 교환 법칙이 성립하지 않습니다.",
    "지난 시간에 배운 내용을 간단히 복습하겠습니다.",
    "시험은 다음 달 십오일 오전 열 시에 시작합니다.",
    "오늘 날씨가 정말 좋네요.",
    "이 문제는 다음 시간에 다시 풀어 보겠습니다.",
    "감사합니다. 좋은 하루 보내세요.",
    "회의는 오후 세 시에 시작합니다.",
)
VOICES = ("ko-f1", "ko-m1", "ko")
RATE_WPM = 140


@dataclass
class Workload:
    audios: list[np.ndarray]
    ids: list[str]
    source: str  # "synthetic:N" or the manifest path
    texts: list[str] = field(default_factory=list)
    skipped: list[dict] = field(default_factory=list)  # {"id", "reason"}

    @property
    def durations_s(self) -> list[float]:
        return [len(a) / SAMPLE_RATE for a in self.audios]

    @property
    def audio_s(self) -> float:
        return float(sum(self.durations_s))

    def describe(self) -> dict:
        d = self.durations_s
        return {"source": self.source, "n_clips": len(self.audios), "audio_s": round(self.audio_s, 3),
                "clip_s_min": round(min(d), 3) if d else None, "clip_s_max": round(max(d), 3) if d else None,
                "n_skipped": len(self.skipped), "skipped": self.skipped}


def synthetic(n: int) -> Workload:
    """n clips: the sentences in turn, each round with the next speaker voice (deterministic)."""
    from soritune.data.synth import speak

    if n < 1:
        raise ValueError("synthetic workload needs n >= 1")
    audios, ids, texts = [], [], []
    for i in range(n):
        text = SENTENCES[i % len(SENTENCES)]
        voice = VOICES[(i // len(SENTENCES)) % len(VOICES)]
        audios.append(speak(text, voice=voice, rate=RATE_WPM))
        ids.append(f"synth-{i:03d}-{voice}")
        texts.append(text)
    return Workload(audios, ids, f"synthetic:{n}", texts)


def from_manifest(path: str, limit: int | None = None) -> Workload:
    """Clips of a manifest (offset/duration cut when the row has an offset); unusable rows -> skipped."""
    from soritune.audio import load_audio
    from soritune.data.manifest import read_manifest
    from soritune.errors import AudioError

    rows = read_manifest(path, limit=limit)
    wl = Workload([], [], str(path))
    for row in rows:
        try:
            audio = load_audio(row["audio"])
        except AudioError as e:
            wl.skipped.append({"id": row["id"], "reason": e.reason})
            continue
        if row.get("offset") is not None:
            start = int(round(float(row["offset"]) * SAMPLE_RATE))
            audio = audio[start: start + int(round(float(row["duration"]) * SAMPLE_RATE))]
        if len(audio) == 0:
            wl.skipped.append({"id": row["id"], "reason": "empty"})
        elif len(audio) > MAX_CLIP_S * SAMPLE_RATE + 1:
            wl.skipped.append({"id": row["id"], "reason": "longer_than_30s"})
        else:
            wl.audios.append(audio.astype(np.float32, copy=False))
            wl.ids.append(row["id"])
            wl.texts.append(row.get("text", ""))
    return wl


class ClipSourceConfig(StageConfig):
    """Base of the bench configs: clips come from `manifest` or `synthetic` (fields of each config), not both."""

    @model_validator(mode="after")
    def _one_source(self):
        if getattr(self, "manifest", None) and getattr(self, "synthetic", None):
            raise ValueError("give either manifest or synthetic, not both")
        return self
