"""Fixtures for compress tests: a few 1-2 s synthetic Korean clips, one torch thread, small budgets."""

from __future__ import annotations

from pathlib import Path

import pytest

TEXTS = ["안녕하세요", "감사합니다", "미분 방정식", "오늘 강의", "삼 더하기 사", "좋은 아침"]
# small training budget for tiny: (train.run fields)
TRAIN = dict(max_steps=2, batch_size=3, lr=1e-2, threads=1, log_every=1, warmup_steps=0, eval_max_new_tokens=4,
             lora_r=4, lora_alpha=8)


@pytest.fixture(scope="session")
def corpus(tmp_path_factory) -> Path:
    from soritune.audio import write_wav
    from soritune.data.manifest import write_manifest
    from soritune.data.synth import VOICES, speak

    out = tmp_path_factory.mktemp("compress_corpus")
    voices = [v for v in VOICES if v.startswith("ko")][:3]
    rows = []
    for i, text in enumerate(TEXTS):
        audio = speak(text, voice=voices[i % len(voices)])
        path = write_wav(out / f"u{i}.wav", audio)
        rows.append({"id": f"u{i}", "audio": path.name, "duration": round(len(audio) / 16000, 4), "text": text})
    write_manifest(out / "train.jsonl", rows)
    write_manifest(out / "dev.jsonl", rows[:2])
    return out


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny tensors on a shared 2-core box: one torch thread is faster and steadier."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def tiny_model():
    """A fresh tiny: model and processor (tests change weights in place)."""
    from soritune.models import load

    return load("tiny:")


def make_adapter(model, out: Path, targets=("q_proj", "v_proj"), seed: int = 0) -> Path:
    """Save a LoRA adapter with non-zero A and B (so a merge changes every targeted weight)."""
    import torch
    from peft import LoraConfig, get_peft_model

    from soritune.compress.modelio import clone_model

    torch.manual_seed(seed)
    peft = get_peft_model(clone_model(model), LoraConfig(r=4, lora_alpha=8, target_modules=list(targets),
                                                         init_lora_weights=False))
    peft.save_pretrained(str(out))
    return out
