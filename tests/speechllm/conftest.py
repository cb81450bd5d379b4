"""Fixtures of the speech-LLM tests: tiny random encoders, projectors and LLMs (seconds each)."""

from __future__ import annotations

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


@pytest.fixture(scope="module")
def tiny_model():
    """A SALMONN-layout tiny speech LLM (trimmed encoder input: fast)."""
    from soritune.speechllm import SpeechLLM

    return SpeechLLM(tiny_config(encoder_input="trimmed"))
