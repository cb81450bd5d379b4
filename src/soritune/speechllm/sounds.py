"""A small audio-captioning set made offline: labelled sounds synthesised with numpy (beeps, chords,
noise bursts, mains hum, sirens, chimes), some mixed with speech, each clip with several paraphrased
English reference captions (COCO CIDEr-D scores a caption against all of them).

    from soritune.speechllm.sounds import build_caption_set
    counts = build_caption_set("data/captions", n_train=96, n_test=24, speech=["a.wav", ...], seed=0)

Writes OUT/audio/*.wav, OUT/train.jsonl and OUT/test.jsonl in the speech-LLM schema (task caption,
response = the first reference, references = all of them). Same seed, same set.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from soritune.audio import SAMPLE_RATE, write_wav
from soritune.data.dataset import load_segment
from soritune.jsonio import write_jsonl
from soritune.speechllm.config import DEFAULT_PROMPTS

KINDS = ("beep", "chord", "noise", "hum", "siren", "chime")
COUNT_WORDS = {1: "one", 2: "two", 3: "three", 4: "four"}
CLIP_S = 3.0


def _t(seconds: float) -> np.ndarray:
    return np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE


def _envelope(n: int, attack_s: float = 0.01, release_s: float = 0.05) -> np.ndarray:
    env = np.ones(n)
    a, r = max(1, int(attack_s * SAMPLE_RATE)), max(1, int(release_s * SAMPLE_RATE))
    env[:a] = np.linspace(0, 1, a)
    env[-r:] *= np.linspace(1, 0, r)
    return env


def _place(clip: np.ndarray, sound: np.ndarray, start_s: float) -> None:
    i = int(start_s * SAMPLE_RATE)
    j = min(len(clip), i + len(sound))
    clip[i:j] += sound[: j - i]


def _event(kind: str, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """One labelled event (the audio, its attributes) lasting at most CLIP_S."""
    clip = np.zeros(int(CLIP_S * SAMPLE_RATE))
    if kind == "beep":
        high = bool(rng.integers(2))
        count = int(rng.integers(1, 5))
        f = rng.uniform(1500, 2500) if high else rng.uniform(300, 550)
        tone = np.sin(2 * np.pi * f * _t(0.18)) * _envelope(int(0.18 * SAMPLE_RATE))
        start = rng.uniform(0.1, 0.5)
        for k in range(count):
            _place(clip, 0.4 * tone, start + 0.45 * k)
        return clip, {"high": high, "count": count}
    if kind == "chord":
        root = rng.uniform(196, 330)
        minor = bool(rng.integers(2))
        t = _t(2.2)
        chord = sum(np.sin(2 * np.pi * root * r * t) for r in (1, 1.189 if minor else 1.26, 1.498))
        _place(clip, 0.25 * chord * np.exp(-1.6 * t) * _envelope(len(t)), rng.uniform(0.1, 0.6))
        return clip, {"minor": minor}
    if kind == "noise":
        loud = bool(rng.integers(2))
        n = int(rng.uniform(1.0, 2.0) * SAMPLE_RATE)
        _place(clip, (0.3 if loud else 0.08) * rng.standard_normal(n) * _envelope(n, 0.05, 0.2), rng.uniform(0.1, 0.8))
        return clip, {"loud": loud}
    if kind == "hum":
        f0 = 60.0 if rng.integers(2) else 50.0
        t = _t(CLIP_S)
        clip += 0.2 * sum(np.sin(2 * np.pi * f0 * h * t) / h for h in (1, 2, 3, 4)) * _envelope(len(t), 0.2, 0.2)
        return clip, {}
    if kind == "siren":
        t = _t(CLIP_S)
        rate = rng.uniform(0.6, 1.2)
        freq = 900 + 350 * np.sin(2 * np.pi * rate * t)
        clip += 0.25 * np.sin(2 * np.pi * np.cumsum(freq) / SAMPLE_RATE)
        return clip, {}
    # chime: a bell-like tone (inharmonic partials, slow decay) struck twice
    f = rng.uniform(600, 1000)
    t = _t(1.4)
    bell = sum(a * np.sin(2 * np.pi * f * p * t) for a, p in ((1, 1), (0.5, 2.76), (0.25, 5.4))) * np.exp(-3 * t)
    _place(clip, 0.3 * bell, 0.1)
    _place(clip, 0.3 * bell, 1.3)
    return clip, {}


def captions_for(kind: str, attrs: dict, speech: bool) -> list[str]:
    """Paraphrased reference captions of one clip (four to five per clip)."""
    if kind == "beep":
        n, pitch = attrs["count"], "high" if attrs["high"] else "low"
        w = COUNT_WORDS[n]
        if n == 1:
            refs = [f"a single {pitch} beep", f"one short {pitch}-pitched beep sounds", f"a {pitch} tone beeps once",
                    f"there is one {pitch} beep"]
        else:
            refs = [f"{w} {pitch} beeps", f"a {pitch} beep sounds {w} times", f"{w} short {pitch}-pitched beeps in a row",
                    f"a {pitch} tone beeps {w} times"]
    elif kind == "chord":
        mode = "minor" if attrs["minor"] else "major"
        refs = [f"a {mode} chord rings out and fades", f"a piano-like {mode} chord is played",
                f"a {mode} chord sounds and slowly decays", f"someone plays a {mode} chord"]
    elif kind == "noise":
        level = "loud" if attrs["loud"] else "soft"
        refs = [f"a burst of {level} static noise", f"{level} hissing noise for a moment",
                f"a short burst of {level} white noise", f"{level} static hisses briefly"]
    elif kind == "hum":
        refs = ["a low electrical hum", "a steady low-pitched hum from a machine", "mains hum drones steadily",
                "a constant low buzzing hum"]
    elif kind == "siren":
        refs = ["a siren wails up and down", "a siren is sounding", "an alarm siren rises and falls",
                "the wailing tone of a siren"]
    else:
        refs = ["a bell chimes twice", "a chime rings two times", "a bell-like tone is struck twice",
                "two chimes of a bell"]
    if speech:
        refs = [f"{r} while a person speaks" for r in refs[:2]] + [f"a person speaks as {refs[2]}",
                                                                  f"speech with {refs[3]} in the background"]
    return refs


def _speech_piece(path: str, rng: np.random.Generator) -> np.ndarray:
    audio = load_segment(path)
    n = int(CLIP_S * SAMPLE_RATE)
    if len(audio) > n:
        start = int(rng.integers(0, len(audio) - n))
        audio = audio[start:start + n]
    return np.pad(audio, (0, n - len(audio)))


def make_clip(rng: np.random.Generator, speech_path: str | None) -> tuple[np.ndarray, list[str], str]:
    kind = KINDS[int(rng.integers(len(KINDS)))]
    clip, attrs = _event(kind, rng)
    if speech_path is not None:
        speech = _speech_piece(speech_path, rng)
        clip = clip + 0.8 * speech / max(1e-6, float(np.abs(speech).max()))
    clip = clip + 0.003 * rng.standard_normal(len(clip))
    clip = (0.9 * clip / max(1.0, float(np.abs(clip).max()))).astype(np.float32)
    return clip, captions_for(kind, attrs, speech_path is not None), kind


def build_caption_set(out: str | Path, *, n_train: int = 96, n_test: int = 24, speech: dict[str, list[str]] | None = None,
                      speech_share: float = 0.3, seed: int = 0) -> dict:
    """Write the captioning set; `speech` maps split -> speech files mixed into `speech_share` of its clips
    (train speech for train clips, test speech for test clips). Returns counts per split and kind."""
    out = Path(out)
    counts: dict = {}
    for split, n in (("train", n_train), ("test", n_test)):
        rng = np.random.default_rng([seed, 0 if split == "train" else 1])
        pool = (speech or {}).get(split) or []
        rows, kinds = [], {}
        for i in range(n):
            speech_path = pool[int(rng.integers(len(pool)))] if pool and rng.random() < speech_share else None
            clip, refs, kind = make_clip(rng, speech_path)
            uid = f"caption-{split}-{i:04d}"
            path = write_wav(out / "audio" / f"{uid}.wav", clip)
            rows.append({"id": uid, "audio": str(path.resolve()), "duration": CLIP_S, "text": "", "task": "caption",
                         "prompt": DEFAULT_PROMPTS["caption"], "response": refs[0], "references": refs,
                         "sound": kind, "with_speech": speech_path is not None})
            kinds[kind] = kinds.get(kind, 0) + 1
        write_jsonl(out / f"{split}.jsonl", rows)
        counts[split] = {"clips": n, "with_speech": sum(r["with_speech"] for r in rows), "kinds": kinds}
    return counts
