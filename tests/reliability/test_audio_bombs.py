"""Defect 1: small compressed uploads must not blow up memory; over-long audio is refused before decoding."""

from __future__ import annotations

import asyncio
import threading
import time
import tracemalloc

import httpx
import numpy as np
import pytest

from soritune.audio import SAMPLE_RATE, decode_bytes, duration_from_header, iter_decode
from soritune.errors import AudioError


def _peak_mb(fn):
    tracemalloc.start()
    try:
        result = fn()
        return result, tracemalloc.get_traced_memory()[1] / 1e6
    finally:
        tracemalloc.stop()


def test_header_duration_rejects_before_decoding(bomb):
    data = bomb(180)  # 3 min of 48 kHz stereo: ~35 KB of FLAC, 69 MB decoded at its native rate
    assert len(data) < 100_000
    assert duration_from_header(data) == pytest.approx(180.0)
    t0 = time.perf_counter()
    with pytest.raises(AudioError) as e:
        _peak_mb(lambda: decode_bytes(data, "bomb.flac", max_duration_s=60))
    assert e.value.reason == "too_long" and "header" in e.value.detail
    assert time.perf_counter() - t0 < 1.0


def test_blockwise_decode_keeps_memory_near_the_16k_mono_output(bomb):
    data = bomb(180)
    audio, peak_mb = _peak_mb(lambda: decode_bytes(data, "bomb.flac"))
    assert len(audio) == 180 * SAMPLE_RATE
    native_mb = 180 * 48000 * 2 * 4 / 1e6  # what decoding the whole file at once allocates (69 MB)
    output_mb = audio.nbytes / 1e6  # 11.5 MB
    assert peak_mb < 3 * output_mb < native_mb, (peak_mb, output_mb)


def test_streamed_decode_holds_one_block(bomb):
    data = bomb(180)

    def consume():
        n = 0
        for block in iter_decode(data, "bomb.flac"):
            n += len(block)
        return n

    n, peak_mb = _peak_mb(consume)
    assert n == 180 * SAMPLE_RATE
    assert peak_mb < 20, peak_mb  # a 10-s block at 48 kHz stereo is 3.8 MB; the whole file at once: 69 MB


def test_blockwise_resampling_matches_one_shot(noise_wav):
    import io

    import soundfile as sf

    from soritune.audio import resample

    data = noise_wav(25.0, sample_rate=44100)
    whole, sr = sf.read(io.BytesIO(data), dtype="float32")
    expected = resample(whole, sr)
    got = decode_bytes(data)
    assert abs(len(got) - len(expected)) <= 1
    n = min(len(got), len(expected))
    assert np.abs(got[:n] - expected[:n]).max() < 1e-3


def test_server_refuses_a_bomb_longer_than_max_audio(make_server, slow_backend, bomb):
    backend = slow_backend(0.0)
    srv = make_server(backend, max_audio_s=60)
    r = httpx.post(srv.url + "/v1/audio/transcriptions", files={"file": ("b.flac", bomb(180))}, timeout=30)
    assert r.status_code == 400 and r.json()["error"]["code"] == "audio_too_long"
    assert "180 s" in r.json()["error"]["message"]
    assert backend.clips == 0


def test_concurrent_decodes_are_capped(monkeypatch, bomb):
    from soritune.serve import pipeline
    from soritune.serve.batcher import MicroBatcher

    active, most = 0, 0
    lock = threading.Lock()
    real = pipeline.iter_decode

    def counted(*args, **kwargs):
        nonlocal active, most
        for block in real(*args, **kwargs):
            with lock:
                active += 1
                most = max(most, active)
            time.sleep(0.01)
            with lock:
                active -= 1
            yield block

    monkeypatch.setattr(pipeline, "iter_decode", counted)

    async def main():
        batcher = MicroBatcher(lambda audios, lang, task: [_T() for _ in audios], max_batch=4, window_ms=0)
        batcher.start()
        slots = asyncio.Semaphore(1)
        data = bomb(60)
        try:
            results = await asyncio.gather(*(pipeline.transcribe_upload(data, f"b{i}.flac", batcher, language="ko",
                                                                       decode_slots=slots) for i in range(4)))
        finally:
            await batcher.stop()
        return results

    results = asyncio.run(main())
    assert len({len(r.segments) for r in results}) == 1 and len(results[0].segments) >= 2
    assert most == 1


class _T:
    text, tokens, hit_max_tokens = "x", [1], False
