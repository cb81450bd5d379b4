"""Write a synthetic tree in the KsponSpeech layout (for tests, benchmarks and offline demos).

Transcripts are ETRI-marked Korean (noise tags, duals, fillers, repetitions, digit brackets,
`*`), stored as CP949 `.txt` beside headerless 16-bit PCM, plus `KsponSpeech_scripts/*.trn`
in the encoding asked for. The audio is low-level noise (or, with `sparse=True`, a sparse file
of the right size: prepare reads only the size of a PCM, so timings are the same, disk is not).
With `defects=True` about 1 utterance in 50 carries a defect prepare must quarantine
(too-short audio, empty or malformed transcript) and some PCM files have an odd byte count.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

WORDS = ("그거", "진짜", "소리야", "학교", "오늘", "내일", "친구", "밥", "먹었어", "그래서", "근데", "우리",
         "강의", "시험", "공부", "했는데", "너무", "좋아", "어제", "집에", "갔어", "뭐", "왜", "안돼", "있잖아")
FILLERS = ("아/", "음/", "어/", "그/", "뭐/")
DUALS = (("(3)/(세)", "개"), ("(SNS)/(에스엔에스)", "에"), ("(70%)/(칠십 퍼센트)", ""), ("(2)/(두)", "시"),
         ("(AI)/(에이아이)", "가"), ("(10)/(열)", "명"))


@dataclass
class FakeTree:
    root: Path
    counts: dict[str, int] = field(default_factory=dict)  # utterances per split
    defects: dict[str, int] = field(default_factory=dict)  # expected quarantine reasons


def fake_transcript(rng: random.Random) -> str:
    """One ETRI-marked line, CP949-encodable."""
    toks = [rng.choice(WORDS) for _ in range(rng.randint(3, 9))]
    if rng.random() < 0.3:
        toks.insert(rng.randrange(len(toks) + 1), rng.choice(FILLERS))
    if rng.random() < 0.3:
        dual, suffix = rng.choice(DUALS)
        toks.insert(rng.randrange(len(toks) + 1), dual + suffix)
    if rng.random() < 0.15:
        i = rng.randrange(len(toks))
        toks.insert(i, toks[i] + "+")
    if rng.random() < 0.1:
        toks.append("[공 일 공]")
    if rng.random() < 0.1:
        toks[0] = "*" + toks[0]
    if rng.random() < 0.3:
        toks.insert(0, rng.choice(("b/", "n/", "l/", "o/", "u/")))
    return " ".join(toks) + rng.choice(("", ".", "?"))


def _layout(n: int) -> list[tuple[str, str, str]]:
    """(split, relative folder, id) for n utterances: ~2% dev, ~2% each eval set, rest train."""
    n_eval = n // 50
    n_dev = n // 50
    n_train = n - 2 * n_eval - n_dev
    out = []
    for i in range(n_train):
        folder = 1 + i // 1000
        out.append(("train", f"KsponSpeech_{1 + (folder - 1) // 124:02d}/KsponSpeech_{folder:04d}", f"KsponSpeech_{i + 1:06d}"))
    for j in range(n_dev):
        i = n_train + j
        out.append(("dev", f"KsponSpeech_05/KsponSpeech_{621 + j // 1000:04d}", f"KsponSpeech_{i + 1:06d}"))
    for k in range(2 * n_eval):
        split = "eval_clean" if k < n_eval else "eval_other"
        out.append((split, f"KsponSpeech_eval/{split}", f"KsponSpeech_E{k + 1:05d}"))
    return out


def write_kspon_tree(root: str | Path, n: int, *, seed: int = 0, scripts: bool = True,
                     script_encoding: str = "utf-8", sparse: bool = False, defects: bool = True,
                     min_s: float = 0.8, max_s: float = 6.0) -> FakeTree:
    """Write n utterances under root in the KsponSpeech layout; returns what was written."""
    root = Path(root)
    rng = random.Random(seed)
    noise = (np.random.default_rng(seed).normal(0, 300, 16000 * int(max_s + 1))).astype("<i2").tobytes()
    tree = FakeTree(root)
    lines: dict[str, list[str]] = {}
    made_dirs: set[Path] = set()
    for split, folder, uid in _layout(n):
        d = root / folder
        if d not in made_dirs:
            d.mkdir(parents=True, exist_ok=True)
            made_dirs.add(d)
        text = fake_transcript(rng)
        n_bytes = 2 * int(rng.uniform(min_s, max_s) * 16000)
        roll = rng.random() if defects else 1.0
        if roll < 0.005:
            n_bytes, reason = 2 * int(0.2 * 16000), "too_short"
        elif roll < 0.01:
            text, reason = "b/ n/", "empty"
        elif roll < 0.015:
            text, reason = "(60)/)육십) " + text, "malformed"
        else:
            reason = None
        if defects and rng.random() < 0.02:
            n_bytes += 1  # odd byte count: still readable, size // 2 samples
        if reason:
            tree.defects[reason] = tree.defects.get(reason, 0) + 1
        pcm = d / f"{uid}.pcm"
        if sparse:
            with pcm.open("wb") as f:
                f.truncate(n_bytes)
        else:
            pcm.write_bytes((noise * (1 + n_bytes // len(noise)))[:n_bytes])
        (d / f"{uid}.txt").write_bytes((text + "\n").encode("cp949"))
        lines.setdefault(split, []).append(f"{folder}/{uid}.pcm :: {text}")
        tree.counts[split] = tree.counts.get(split, 0) + 1
    if scripts:
        sd = root / "KsponSpeech_scripts"
        sd.mkdir(parents=True, exist_ok=True)
        for split, ls in lines.items():
            (sd / f"{split}.trn").write_bytes(("\n".join(ls) + "\n").encode(script_encoding))
    return tree
