"""On-the-fly training augmentation: waveform transforms, then SpecAugment on the log-mel features.

Per utterance, in this order, each with its own probability (0 = off, the default for all):
    speed      resample by a factor drawn from `speed_range` (tempo and pitch change, Kaldi-style)
    reverb     convolve with a synthetic room impulse response: a direct path plus Gaussian noise
               decaying exponentially to -60 dB at RT60 (drawn from `reverb_rt60_s`), scaled to a
               direct-to-reverberant ratio drawn from `reverb_drr_db`; loudness (RMS) kept
    noise      add noise at an SNR drawn from `noise_snr_db`: white, pink or brown noise made here,
               or a random stretch of a clip from `noise_manifest` (e.g. MUSAN noise) when given
    telephone  8 kHz narrow-band channel: down to 8 kHz, band-pass 300-3400 Hz, G.711 mu-law
               (`telephone_mulaw`), back up to 16 kHz
    specaugment  `spec_time_masks` time masks and `spec_freq_masks` frequency masks on the log-mel,
               inside the utterance's own frames (never the batch padding), filled with its mean

Every draw comes from `numpy.random.default_rng((seed, epoch, utterance index))`, so a run is a
pure function of its seed: the same utterance in the same epoch gets the same augmentation in any
batch, process or DataLoader worker, and a resumed run replays the uninterrupted one exactly.
Labels are never touched. Only training batches are augmented (the collator applies it when the
training loop passes seeds); dev evaluation never is. It runs in the data path on the CPU (in the
DataLoader workers with num_workers > 0), whichever device trains; cost per batch of 8 clips:
benchmarks/augment_cost.py.

Whisper's own SpecAugment (`config.apply_spec_augment`, `mask_time_prob`, ...) is not used: it runs
inside `WhisperModel.forward`, which soritune's loss bypasses (it calls the encoder on trimmed
input directly), it draws from numpy's global RNG (not reproducible per utterance across workers
or on resume), and it would mask batch padding as well.
"""

from __future__ import annotations

import numpy as np
from pydantic import Field, field_validator, model_validator

from soritune.audio import SAMPLE_RATE, resample
from soritune.config import StageConfig
from soritune.errors import ConfigError

NAMES = ("speed", "reverb", "noise", "telephone", "specaugment")
ON_P = {"speed": 0.5, "reverb": 0.3, "noise": 0.5, "telephone": 0.2, "specaugment": 1.0}  # a bare `--augment NAME` (cli/train.py help)
MAX_SAMPLES = 30 * SAMPLE_RATE  # Whisper's window: speed perturbation never makes a clip longer
PHONE_SR = 8000
PHONE_BAND_HZ = (300.0, 3400.0)
MU = 255


def _p(description: str):
    return Field(0.0, ge=0.0, le=1.0, description=description)


def _check_range(v, lo: float, hi: float, unit: str):
    a, b = float(v[0]), float(v[1])
    if not (lo <= a <= b <= hi):
        raise ValueError(f"expected [low, high] with {lo} <= low <= high <= {hi} {unit}, got {list(v)}")
    return (a, b)


class AugmentConfig(StageConfig):
    """Training augmentation; each transform applies to an utterance with its probability (0 = off)."""

    speed_p: float = _p("probability of speed perturbation")
    speed_range: tuple[float, float] = Field((0.9, 1.1), description="speed factor drawn uniformly from [low, high] (0.5-2)")
    reverb_p: float = _p("probability of synthetic room reverberation")
    reverb_rt60_s: tuple[float, float] = Field((0.2, 0.8), description="RT60 drawn from [low, high] seconds (0.05-3)")
    reverb_drr_db: tuple[float, float] = Field((0.0, 10.0), description="direct-to-reverberant ratio, dB, drawn from [low, high]")
    noise_p: float = _p("probability of additive noise")
    noise_snr_db: tuple[float, float] = Field((10.0, 30.0), description="signal-to-noise ratio, dB, drawn from [low, high]")
    noise_manifest: str | None = Field(None, description="manifest of noise recordings to mix in (default: white/pink/brown noise)")
    telephone_p: float = _p("probability of the 8-kHz telephone channel (300-3400 Hz)")
    telephone_mulaw: bool = Field(True, description="telephone channel includes G.711 mu-law 8-bit quantisation")
    specaugment_p: float = _p("probability of SpecAugment masking on the log-mel features")
    spec_time_masks: int = Field(2, ge=0, le=20, description="SpecAugment time masks per utterance")
    spec_time_mask_frames: int = Field(40, ge=1, le=3000, description="longest time mask, frames of 10 ms")
    spec_time_mask_ratio: float = Field(0.1, gt=0, le=1, description="a time mask covers at most this fraction of the utterance")
    spec_freq_masks: int = Field(2, ge=0, le=20, description="SpecAugment frequency masks per utterance")
    spec_freq_mask_bins: int = Field(27, ge=1, le=128, description="widest frequency mask, mel bins")

    @field_validator("speed_range")
    @classmethod
    def _speed(cls, v):
        return _check_range(v, 0.5, 2.0, "(factor)")

    @field_validator("reverb_rt60_s")
    @classmethod
    def _rt60(cls, v):
        return _check_range(v, 0.05, 3.0, "s")

    @field_validator("reverb_drr_db", "noise_snr_db")
    @classmethod
    def _db(cls, v):
        return _check_range(v, -20.0, 60.0, "dB")

    @model_validator(mode="after")
    def _noise_source(self):
        if self.noise_manifest is not None:
            from pathlib import Path

            if not Path(self.noise_manifest).is_file():
                raise ValueError(f"noise_manifest: {self.noise_manifest} does not exist")
        return self

    @property
    def active(self) -> bool:
        return any(getattr(self, f"{n}_p") > 0 for n in NAMES)

    def enabled(self) -> list[str]:
        return [n for n in NAMES if getattr(self, f"{n}_p") > 0]


def parse_switches(text: str) -> dict[str, float]:
    """`--augment speed,noise=0.3,specaugment` -> {"speed_p": 0.5, "noise_p": 0.3, "specaugment_p": 1.0}."""
    out: dict[str, float] = {}
    for item in (s.strip() for s in text.split(",")):
        if not item:
            continue
        name, _, p = item.partition("=")
        name = name.strip().lower()
        if name not in NAMES:
            raise ConfigError(f"--augment: unknown augmentation {name!r}; choose from {', '.join(NAMES)}")
        try:
            prob = float(p) if p else ON_P[name]
        except ValueError:
            raise ConfigError(f"--augment: {item!r}: the probability must be a number in [0, 1]") from None
        if not 0.0 <= prob <= 1.0:
            raise ConfigError(f"--augment: {item!r}: the probability must be in [0, 1]")
        out[f"{name}_p"] = prob
    return out


# ---- waveform transforms (float32 16 kHz mono in, float32 out) ---------------------------------
def speed(audio: np.ndarray, factor: float) -> np.ndarray:
    """Play `factor` times faster (shorter, higher); never beyond 30 s."""
    factor = max(factor, len(audio) / MAX_SAMPLES)
    return resample(audio, round(SAMPLE_RATE * factor), SAMPLE_RATE)


def _fft_convolve(a: np.ndarray, h: np.ndarray) -> np.ndarray:
    n = len(a) + len(h) - 1
    size = 1 << (n - 1).bit_length()
    return np.fft.irfft(np.fft.rfft(a, size) * np.fft.rfft(h, size), size)[:len(a)]


def _rms(audio: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(audio, dtype=np.float64)))) if len(audio) else 0.0


def room_impulse_response(rng: np.random.Generator, rt60_s: float, drr_db: float) -> np.ndarray:
    """Direct path (1 at t=0) + exponentially decaying noise tail whose energy is drr_db below it."""
    n = max(2, int(rt60_s * SAMPLE_RATE))
    t = np.arange(1, n) / SAMPLE_RATE
    tail = rng.standard_normal(n - 1) * np.exp(-6.908 * t / rt60_s)  # -60 dB at rt60
    tail *= np.sqrt(10 ** (-drr_db / 10) / max(float(np.sum(tail ** 2)), 1e-12))
    return np.concatenate([[1.0], tail])


def reverb(audio: np.ndarray, rng: np.random.Generator, rt60_s: float, drr_db: float) -> np.ndarray:
    """Convolve with a synthetic room response; same length and RMS as the input."""
    wet = _fft_convolve(audio.astype(np.float64), room_impulse_response(rng, rt60_s, drr_db))
    gain = _rms(audio) / max(_rms(wet), 1e-12)
    return (wet * gain).astype(np.float32)


def coloured_noise(rng: np.random.Generator, n: int, colour: str) -> np.ndarray:
    """White (flat), pink (1/f power) or brown (1/f^2 power) Gaussian noise, unit RMS."""
    if colour == "white":
        noise = rng.standard_normal(n)
    else:
        size = 1 << max(1, (n - 1).bit_length())  # a power of two: FFTs of odd lengths can be 10x slower
        spec = np.fft.rfft(rng.standard_normal(size))
        f = np.arange(len(spec), dtype=np.float64)
        f[0] = 1.0
        spec /= f ** (0.5 if colour == "pink" else 1.0)
        noise = np.fft.irfft(spec, size)[:n]
    return noise / max(_rms(noise), 1e-12)


def add_noise(audio: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """audio + noise scaled so that power(audio) / power(noise) = snr_db; silence is left alone."""
    signal = _rms(audio)
    level = _rms(noise)
    if signal == 0.0 or level == 0.0:
        return audio
    scale = signal / (level * 10 ** (snr_db / 20))
    return (audio + scale * noise[:len(audio)]).astype(np.float32)


def _band_pass(audio: np.ndarray, sr: int, lo_hz: float, hi_hz: float, taper_hz: float = 100.0) -> np.ndarray:
    """Zero-phase FFT band-pass with raised-cosine edges `taper_hz` wide (zero-padded: no wrap-around)."""
    size = 1 << (2 * len(audio) - 1).bit_length()
    spec = np.fft.rfft(audio, size)
    f = np.fft.rfftfreq(size, 1 / sr)
    gain = np.clip(np.minimum((f - lo_hz + taper_hz) / taper_hz, (hi_hz + taper_hz - f) / taper_hz), 0, 1)
    gain = 0.5 - 0.5 * np.cos(np.pi * gain)
    return np.fft.irfft(spec * gain, size)[:len(audio)]


def mu_law(audio: np.ndarray) -> np.ndarray:
    """G.711 mu-law (mu = 255) encode to 8 bits and decode; input peak-limited to 1."""
    peak = float(np.max(np.abs(audio))) if len(audio) else 0.0
    x = audio / peak if peak > 1.0 else audio
    y = np.sign(x) * np.log1p(MU * np.abs(x)) / np.log1p(MU)
    code = np.round((y + 1) / 2 * MU)  # 256 levels
    y = code / MU * 2 - 1
    out = np.sign(y) * np.expm1(np.abs(y) * np.log1p(MU)) / MU
    return out * peak if peak > 1.0 else out


def telephone(audio: np.ndarray, mulaw: bool = True) -> np.ndarray:
    """16 kHz -> 8 kHz -> 300-3400 Hz -> (mu-law) -> 16 kHz, same length as the input."""
    narrow = _band_pass(resample(audio, SAMPLE_RATE, PHONE_SR).astype(np.float64), PHONE_SR, *PHONE_BAND_HZ)
    if mulaw:
        narrow = mu_law(narrow)
    wide = resample(narrow.astype(np.float32), PHONE_SR, SAMPLE_RATE)
    out = np.zeros(len(audio), dtype=np.float32)
    out[:min(len(out), len(wide))] = wide[:len(out)]
    return out


# ---- feature transform ------------------------------------------------------------------------
def spec_augment(feats: np.ndarray, rng: np.random.Generator, valid_frames: int, *, time_masks: int,
                 time_mask_frames: int, time_mask_ratio: float, freq_masks: int, freq_mask_bins: int) -> np.ndarray:
    """Mask [n_mels, frames] features in place inside the first `valid_frames` frames; returns them."""
    n_mels = feats.shape[0]
    valid = max(1, min(valid_frames, feats.shape[1]))
    fill = float(feats[:, :valid].mean())
    widest = max(1, min(time_mask_frames, int(time_mask_ratio * valid)))
    for _ in range(time_masks):
        w = int(rng.integers(0, widest + 1))
        s = int(rng.integers(0, valid - w + 1))
        feats[:, s:s + w] = fill
    for _ in range(freq_masks):
        w = int(rng.integers(0, min(freq_mask_bins, n_mels) + 1))
        s = int(rng.integers(0, n_mels - w + 1))
        feats[s:s + w, :valid] = fill
    return feats


class Augmenter:
    """Applies an AugmentConfig; `rng(seed, epoch, index)` gives the utterance's generator."""

    def __init__(self, config: AugmentConfig):
        self.cfg = config
        self._noise_rows: list[dict] | None = None

    @staticmethod
    def rng(seed: int, epoch: int, index: int) -> np.random.Generator:
        return np.random.default_rng([int(seed) & 0xFFFFFFFF, int(epoch), int(index), 0xA06])

    def _noise(self, rng: np.random.Generator, n: int) -> np.ndarray:
        if self.cfg.noise_manifest is None:
            return coloured_noise(rng, n, ("white", "pink", "brown")[int(rng.integers(3))])
        from soritune.data.dataset import load_segment
        from soritune.data.manifest import read_manifest

        if self._noise_rows is None:
            self._noise_rows = read_manifest(self.cfg.noise_manifest)
        row = self._noise_rows[int(rng.integers(len(self._noise_rows)))]
        dur = float(row.get("duration") or 0.0)
        offset = float(rng.uniform(0, max(0.0, dur - n / SAMPLE_RATE)))
        clip = load_segment(row["audio"], (row.get("offset") or 0.0) + offset, n / SAMPLE_RATE)
        return np.resize(clip, n) if 0 < len(clip) < n else clip

    def audio(self, audio: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """The waveform transforms, each drawn with its probability (one uniform draw each, always)."""
        c = self.cfg
        a = np.asarray(audio, dtype=np.float32)
        if len(a) == 0:
            return a
        if rng.random() < c.speed_p:
            a = speed(a, float(rng.uniform(*c.speed_range)))
        if rng.random() < c.reverb_p:
            a = reverb(a, rng, float(rng.uniform(*c.reverb_rt60_s)), float(rng.uniform(*c.reverb_drr_db)))
        if rng.random() < c.noise_p:
            a = add_noise(a, self._noise(rng, len(a)), float(rng.uniform(*c.noise_snr_db)))
        if rng.random() < c.telephone_p:
            a = telephone(a, c.telephone_mulaw)
        return a

    def features(self, feats: np.ndarray, rng: np.random.Generator, valid_frames: int) -> np.ndarray:
        c = self.cfg
        if rng.random() < c.specaugment_p:
            spec_augment(feats, rng, valid_frames, time_masks=c.spec_time_masks, time_mask_frames=c.spec_time_mask_frames,
                         time_mask_ratio=c.spec_time_mask_ratio, freq_masks=c.spec_freq_masks,
                         freq_mask_bins=c.spec_freq_mask_bins)
        return feats


def augmenter(config: AugmentConfig) -> Augmenter | None:
    """The collator's `augment`: None when every probability is 0 (then batches are exactly un-augmented)."""
    return Augmenter(config) if config.active else None
