"""Non-speech audio, synthesised with numpy: what a recogniser must leave empty.

  silence       digital zeros
  room_tone     quiet pink noise with a low ventilation rumble (about -50 dBFS)
  mains_hum     50 or 60 Hz and its harmonics, plus a little noise
  music         chord progressions of additive-synthesis tones with attack/decay envelopes
  beeps         telephone tones: ringback (440+480 Hz), busy (480+620 Hz), 1 kHz recorder pips
  hold_music    a melody over chords, band-limited to the 300-3400 Hz telephone band, with line noise

Used by the hallucination suite (`soritune.eval.hallucination_clips`, its own seeds) and by the synthetic
corpus's non-speech training clips (`SynthCorpusConfig.nonspeech_share`, other seeds). Music is made with
numpy rather than fluidsynth or sox (Debian has both, PyPI neither): the same samples on every machine.
"""

from __future__ import annotations

import numpy as np

from soritune.audio import SAMPLE_RATE

NONSPEECH_KINDS = ("silence", "room_tone", "mains_hum", "music", "beeps", "hold_music")
KINDS_SEED = 7919  # default seed root of `nonspeech_audio` (the suite passes its own generators)


def _t(duration_s: float) -> np.ndarray:
    return np.arange(round(duration_s * SAMPLE_RATE)) / SAMPLE_RATE


def _at_dbfs(x: np.ndarray, dbfs: float) -> np.ndarray:
    rms = float(np.sqrt(np.mean(x.astype(np.float64) ** 2))) or 1.0
    return (x * (10 ** (dbfs / 20) / rms)).astype(np.float32)


def _shaped_noise(rng, n: int, exponent: float) -> np.ndarray:
    """Noise with power ~ 1/f^exponent (1 = pink), by shaping white noise's spectrum."""
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n, 1 / SAMPLE_RATE)
    spec *= 1 / np.maximum(f, 20.0) ** (exponent / 2)
    return np.fft.irfft(spec, n)


def _band(x: np.ndarray, lo_hz: float, hi_hz: float) -> np.ndarray:
    spec = np.fft.rfft(x)
    f = np.fft.rfftfreq(len(x), 1 / SAMPLE_RATE)
    spec[(f < lo_hz) | (f > hi_hz)] = 0
    return np.fft.irfft(spec, len(x))


def _tone(freq_hz: float, duration_s: float, harmonics=(1.0, 0.5, 0.25, 0.12)) -> np.ndarray:
    t = _t(duration_s)
    x = sum(a * np.sin(2 * np.pi * freq_hz * (k + 1) * t) for k, a in enumerate(harmonics))
    n = len(t)
    env = np.minimum(1.0, t / 0.02) * np.exp(-2.5 * t / max(duration_s, 1e-3))  # attack, decay
    env[-min(n, 160):] *= np.linspace(1, 0, min(n, 160))
    return x * env


def _midi_hz(note: int) -> float:
    return 440.0 * 2 ** ((note - 69) / 12)


def _chords(rng, duration_s: float) -> np.ndarray:
    root = int(rng.integers(55, 62))
    progression = [(0, 4, 7), (7, 11, 14), (9, 12, 16), (5, 9, 12)]  # I V vi IV
    beat_s = float(rng.choice([1.5, 2.0, 2.5]))
    out = np.zeros(len(_t(duration_s)))
    pos, k = 0, 0
    while pos < len(out):
        chord = sum(_tone(_midi_hz(root + i), beat_s) for i in progression[k % 4]) + 0.6 * _tone(_midi_hz(root - 12), beat_s)
        seg = chord[:len(out) - pos]
        out[pos:pos + len(seg)] += seg
        pos, k = pos + len(chord), k + 1
    return out


def _melody(rng, duration_s: float) -> np.ndarray:
    scale = [0, 2, 4, 5, 7, 9, 11, 12]
    root = int(rng.integers(67, 74))
    out = np.zeros(len(_t(duration_s)))
    pos = 0
    while pos < len(out):
        note_s = float(rng.choice([0.25, 0.5, 0.5, 1.0]))
        seg = _tone(_midi_hz(root + scale[int(rng.integers(len(scale)))]), note_s)[:len(out) - pos]
        out[pos:pos + len(seg)] += seg
        pos += len(seg)
    return out


def _beeps(variant: int, duration_s: float) -> np.ndarray:
    t = _t(duration_s)
    pattern = variant % 3
    if pattern == 0:  # ringback: 440+480 Hz, 2 s on, 4 s off
        x, gate = np.sin(2 * np.pi * 440 * t) + np.sin(2 * np.pi * 480 * t), (t % 6.0) < 2.0
    elif pattern == 1:  # busy: 480+620 Hz, 0.5 s on, 0.5 s off
        x, gate = np.sin(2 * np.pi * 480 * t) + np.sin(2 * np.pi * 620 * t), (t % 1.0) < 0.5
    else:  # recorder pips: 1 kHz, 0.2 s every 1.5 s
        x, gate = np.sin(2 * np.pi * 1000 * t), (t % 1.5) < 0.2
    return x * gate


def nonspeech_audio(kind: str, variant: int, duration_s: float, rng: np.random.Generator | None = None) -> np.ndarray:
    """One non-speech clip (float32, 16 kHz) of `kind`; `variant` picks the hum frequency and the beep
    pattern, `rng` (default: seeded by kind and variant) everything random."""
    rng = rng if rng is not None else np.random.default_rng([KINDS_SEED, NONSPEECH_KINDS.index(kind), variant])
    n = len(_t(duration_s))
    if kind == "silence":
        return np.zeros(n, dtype=np.float32)
    if kind == "room_tone":
        rumble = _band(rng.standard_normal(n), 30, 120)
        return _at_dbfs(_at_dbfs(_shaped_noise(rng, n, 1.0), -52) + _at_dbfs(rumble, -55), -50)
    if kind == "mains_hum":
        f0 = 60.0 if variant % 2 == 0 else 50.0
        t = _t(duration_s)
        hum = sum(np.sin(2 * np.pi * f0 * k * t + rng.uniform(0, 2 * np.pi)) / k ** 1.3 for k in range(1, 8))
        return _at_dbfs(_at_dbfs(hum, -30) + _at_dbfs(rng.standard_normal(n), -60), -30)
    if kind == "music":
        return _at_dbfs(_chords(rng, duration_s), -20)
    if kind == "beeps":
        return _at_dbfs(_beeps(variant, duration_s) + 0.003 * rng.standard_normal(n), -22)
    if kind == "hold_music":
        line = _band(0.5 * _chords(rng, duration_s) + _melody(rng, duration_s), 300, 3400)
        return _at_dbfs(_at_dbfs(line, -24) + _at_dbfs(rng.standard_normal(n), -58), -24)
    raise ValueError(f"unknown non-speech kind {kind!r}; known: {', '.join(NONSPEECH_KINDS)}")
