"""Fixtures for train tests: a handful of 1-2 s synthetic Korean clips and a config factory."""

from __future__ import annotations

from pathlib import Path

import pytest

TEXTS = ["안녕하세요", "감사합니다", "미분 방정식", "오늘 강의", "삼 더하기 사", "좋은 아침", "행렬의 곱", "확률 분포"]


def make_corpus(out: Path, texts=TEXTS) -> Path:
    from soritune.audio import write_wav
    from soritune.data.manifest import write_manifest
    from soritune.data.synth import VOICES, speak

    out.mkdir(parents=True, exist_ok=True)
    voices = list(VOICES)[:4]
    rows = []
    for i, text in enumerate(texts):
        audio = speak(text, voice=voices[i % len(voices)])
        path = write_wav(out / f"u{i}.wav", audio)
        rows.append({"id": f"u{i}", "audio": path.name, "duration": round(len(audio) / 16000, 4), "text": text})
    write_manifest(out / "train.jsonl", rows)
    write_manifest(out / "dev.jsonl", rows[:3])
    return out


@pytest.fixture(scope="session")
def corpus(tmp_path_factory) -> Path:
    return make_corpus(tmp_path_factory.mktemp("train_corpus"))


@pytest.fixture
def make_cfg(corpus, tmp_path):
    """TrainConfig factory on tiny: with test-sized defaults (1 thread: the CI box is shared)."""
    from soritune.train.config import TrainConfig

    def factory(**kw) -> TrainConfig:
        base = dict(model="tiny:", train=str(corpus / "train.jsonl"), out=str(tmp_path / "run"), batch_size=4,
                    max_steps=4, lr=1e-2, threads=1, log_every=1, eval_at_start=False, warmup_steps=0)
        base.update(kw)
        return TrainConfig(**base)

    return factory


@pytest.fixture(autouse=True)
def one_thread():
    """Small tensors on a shared 2-core box: one torch thread is faster and steadier."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
