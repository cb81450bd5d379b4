"""Fixtures of the reliability suite: small hostile inputs made on the fly, a slow fake backend, servers."""

from __future__ import annotations

import functools
import io
import threading
import time

import numpy as np
import pytest


@functools.lru_cache(maxsize=8)
def silence_flac(seconds: float, sample_rate: int = 48000, channels: int = 2) -> bytes:
    """A 'decompression bomb': FLAC of silence is ~100x smaller than its decoded samples."""
    import soundfile as sf

    buf = io.BytesIO()
    block = np.zeros((sample_rate * 10, channels), dtype=np.float32)
    with sf.SoundFile(buf, "w", samplerate=sample_rate, channels=channels, format="FLAC") as f:
        left = int(seconds * sample_rate)
        while left > 0:
            f.write(block[: min(left, len(block))])
            left -= len(block)
    return buf.getvalue()


def wav_bytes(seconds: float, sample_rate: int = 16000) -> bytes:
    import soundfile as sf

    rng = np.random.default_rng(0)
    buf = io.BytesIO()
    sf.write(buf, (0.1 * rng.standard_normal(int(seconds * sample_rate))).astype(np.float32), sample_rate,
             format="WAV", subtype="PCM_16")
    return buf.getvalue()


class SlowBackend:
    """A backend whose model call takes `delay_s`; records every batch (clip lengths in samples)."""

    name = "fake"
    processor = None

    def __init__(self, delay_s: float = 0.2):
        self.delay_s = delay_s
        self.batches: list[list[int]] = []
        self.lock = threading.Lock()

    def transcribe(self, audios, *, language="ko", task="transcribe", batch_size=8, max_new_tokens=8, progress=None):
        from soritune.infer.base import Transcription

        time.sleep(self.delay_s)
        with self.lock:
            self.batches.append([len(a) for a in audios])
        return [Transcription(text=f"n{len(a)}", tokens=[1]) for a in audios]

    def describe(self) -> dict:
        return {"backend": "fake", "spec": "fake:secret-spec", "adapter": "/secret/adapter/path"}

    @property
    def clips(self) -> int:
        with self.lock:
            return sum(len(b) for b in self.batches)


@pytest.fixture
def make_server():
    """make_server(backend, **config) -> a started, ready BackgroundServer; stopped at teardown."""
    from soritune.serve.app import ServeConfig, create_app
    from soritune.serve.runner import BackgroundServer

    servers = []

    def make(backend, **fields):
        fields.setdefault("model", "fake:secret-spec")
        srv = BackgroundServer(create_app(ServeConfig(**fields), backend), start_timeout_s=30).start()
        servers.append(srv)
        if backend is not None:
            srv.wait_ready(60)
        return srv

    yield make
    for srv in servers:
        srv.stop(timeout_s=5)


@pytest.fixture
def bomb():
    return silence_flac


@pytest.fixture
def noise_wav():
    return wav_bytes


@pytest.fixture
def slow_backend():
    return SlowBackend
