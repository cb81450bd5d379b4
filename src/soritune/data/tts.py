"""Synthesis backends by name: one way to turn a Hangul reading into 16 kHz speech.

A voice is written `BACKEND:NAME`; a bare name is an espeak-ng voice (as before backends existed):

| backend | voices | per-utterance delivery | module |
|---|---|---|---|
| `espeak` | `ko`, `ko-m1` ... `ko-steph` (and `en` for tests) | rate_wpm, pitch, pitch_range | `data/synth.py` (libespeak-ng) |
| `kokoro` | `jf_alpha`, `jf_gongitsune`, `jf_nezumi`, `jf_tebukuro`, `jm_kumo`, and blends such as `jf_alpha+jm_kumo` or `jf_alpha*0.7+jm_kumo*0.3` | speed | `data/kokoro_tts.py` (Kokoro-82M, int8 ONNX) |

    >>> audio = speak("미분을 배우겠습니다", "kokoro:jm_kumo", speed=1.1)
    >>> audio = speak("미분을 배우겠습니다", "ko-m1", rate_wpm=160)

espeak-ng's Korean is robotic (stock Whisper-base: CER > 100% on it); Kokoro's is natural enough that
Whisper-base reads it at CER ~0.3 zero-shot, so a demo on it shows what adaptation does for real users.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from soritune.errors import SoritunError


@dataclass(frozen=True)
class Voice:
    """A parsed voice: backend and the backend's own voice name (canonical form)."""

    backend: str
    name: str

    @property
    def spec(self) -> str:
        """How manifests and configs write it: espeak voices bare (as before), others `backend:name`."""
        return self.name if self.backend == "espeak" else f"{self.backend}:{self.name}"


@dataclass(frozen=True)
class Backend:
    name: str
    describe: str
    voices: Callable[[], tuple[str, ...]]  # the named voices (blends are extra)
    default_voices: Callable[[], tuple[str, ...]]  # a corpus's speakers when none are given
    canonical: Callable[[str], str]  # validate a voice name, return its canonical form
    speak: Callable[..., np.ndarray]  # (text_pron, name, **delivery) -> 16 kHz float32


def _espeak_voices() -> tuple[str, ...]:
    from soritune.data.synth import VOICES

    return tuple(VOICES)


def _espeak_canonical(name: str) -> str:
    if name not in _espeak_voices():
        raise SoritunError(f"unknown espeak voice {name!r}; choose one of {', '.join(_espeak_voices())}")
    return name


def _espeak_speak(text: str, name: str, *, rate_wpm: int = 165, pitch: int = 50, pitch_range: int = 50,
                  **_ignored) -> np.ndarray:
    from soritune.data.synth import speak

    return speak(text, voice=name, rate=rate_wpm, pitch=pitch, pitch_range=pitch_range)


def _kokoro_voices() -> tuple[str, ...]:
    from soritune.data.kokoro_tts import VOICES

    return VOICES


def _kokoro_canonical(name: str) -> str:
    from soritune.data.kokoro_tts import parse_style

    return parse_style(name).name


def _kokoro_speak(text: str, name: str, *, speed: float = 1.0, threads: int = 1, **_ignored) -> np.ndarray:
    from soritune.data.kokoro_tts import synthesize

    return synthesize(text, name, speed=speed, threads=threads)


BACKENDS: dict[str, Backend] = {
    "espeak": Backend(
        "espeak", "libespeak-ng's Korean voice and its speaker variants (robotic, fast)", _espeak_voices,
        lambda: tuple(v for v in _espeak_voices() if v == "ko" or v.startswith("ko-")), _espeak_canonical,
        _espeak_speak),
    "kokoro": Backend(
        "kokoro", "Kokoro-82M int8 ONNX with Korean phonemes (natural; ~1x real time per core)", _kokoro_voices,
        _kokoro_voices, _kokoro_canonical, _kokoro_speak),
}


def parse_voice(spec: str) -> Voice:
    """'kokoro:jm_kumo' -> Voice('kokoro', 'jm_kumo'); 'ko-m1' or 'espeak:ko-m1' -> espeak."""
    backend, sep, name = spec.partition(":")
    if not sep:
        backend, name = "espeak", spec
    if backend not in BACKENDS:
        raise SoritunError(f"unknown synthesis backend {backend!r} in voice {spec!r}; choose one of {', '.join(BACKENDS)}")
    return Voice(backend, BACKENDS[backend].canonical(name))


def default_voices(backend: str) -> list[str]:
    """Voice specs of a backend's default speakers."""
    if backend not in BACKENDS:
        raise SoritunError(f"unknown synthesis backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    return [Voice(backend, v).spec for v in BACKENDS[backend].default_voices()]


def speak(text_pron: str, voice: str, **delivery) -> np.ndarray:
    """Speak a Hangul reading with `voice` (see module doc); 16 kHz mono float32, deterministic.
    `delivery`: the backend's own settings (espeak: rate_wpm, pitch, pitch_range; kokoro: speed);
    settings of the other backend are ignored."""
    v = parse_voice(voice)
    return BACKENDS[v.backend].speak(text_pron, v.name, **delivery)
