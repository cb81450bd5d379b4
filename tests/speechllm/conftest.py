"""Fixtures of the speech-LLM tests: tiny random encoders, projectors and LLMs (seconds each)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

TINY_OPTIONS = {"salmonn": dict(hidden=32, heads=4), "granite": dict(hidden=32, heads=4),
                "slam": dict(hidden=64), "ultravox": dict(hidden=64)}


def tiny_config(projector: str = "salmonn", llm: str = "random:tiny", **kw):
    from soritune.speechllm import SpeechLLMConfig

    return SpeechLLMConfig(encoder="tiny:", llm=llm, projector=projector, projector_options=TINY_OPTIONS[projector],
                           **kw)


def tone(seconds: float, freq: float = 440.0, seed: int = 0) -> np.ndarray:
    t = np.arange(int(seconds * 16000)) / 16000
    noise = np.random.default_rng(seed).standard_normal(t.size)
    return (0.3 * np.sin(2 * np.pi * freq * t) + 0.02 * noise).astype(np.float32)


def cached_greedy(model, audio, prompt: str, max_new_tokens: int) -> str:
    """Greedy decoding step by step through the benchmark's prefill + KV-cache decode step (what
    `generate` must equal)."""
    from soritune.speechllm.bench import decode_step, prefill

    logits, past, pos = prefill(model, audio, prompt)
    ids = []
    for _ in range(max_new_tokens):
        tok = int(logits.argmax(-1))
        if tok in model.stop_ids():
            break
        ids.append(tok)
        logits, past = decode_step(model, tok, past, pos)
        pos += 1
    return model.tokenizer.decode(ids, skip_special_tokens=True).strip()


@pytest.fixture(scope="module")
def tiny_model():
    """A SALMONN-layout tiny speech LLM (trimmed encoder input: fast)."""
    from soritune.speechllm import SpeechLLM

    return SpeechLLM(tiny_config(encoder_input="trimmed"))


def toy_examples(root: Path, n: int, seconds: float = 1.0, *, captions: bool = False) -> Path:
    """ROOT/d.jsonl: n transcription rows on distinct tones (and n caption rows on the same clips)."""
    from soritune.audio import write_wav

    rows = []
    for i in range(n):
        path = write_wav(root / f"c{i}.wav", tone(seconds, 250 + 150 * i, seed=i))
        rows.append({"id": f"a{i}", "audio": str(path), "duration": seconds, "text": f"소리 {i}",
                     "task": "transcribe", "response": f"소리 {i}"})
        if captions:
            rows.append({"id": f"c{i}", "audio": str(path), "duration": seconds, "text": "", "task": "caption",
                         "response": "a low beep", "references": ["a low beep", "one low tone", "a short low beep"]})
    (root / "d.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return root / "d.jsonl"
