"""Defect 2: one long upload must not starve others, nor keep the model busy after its client left."""

from __future__ import annotations

import asyncio
import threading
import time

import httpx
import pytest

from soritune.serve.batcher import MicroBatcher


class _T:
    text, tokens, hit_max_tokens = "x", [1], False


def test_batches_take_turns_between_requests():
    import numpy as np

    seen: list[list[str]] = []

    def run_batch(audios, language, task):
        time.sleep(0.01)
        seen.append(["long" if len(a) == 2 else "short" for a in audios])
        return [_T() for _ in audios]

    async def main():
        batcher = MicroBatcher(run_batch, max_batch=4, window_ms=0)
        batcher.start()
        try:
            long_owner = object()
            long_jobs = [asyncio.ensure_future(batcher.submit(np.zeros(2), "ko", owner=long_owner)) for _ in range(40)]
            await asyncio.sleep(0)  # the 40 clips are queued before the short request arrives
            short = await batcher.submit(np.zeros(3), "ko", owner=object())
            await asyncio.gather(*long_jobs)
            return short
        finally:
            await batcher.stop()

    short = asyncio.run(main())
    first_with_short = next(i for i, b in enumerate(seen) if "short" in b)
    assert first_with_short <= 1, seen[:3]  # FIFO would put it in batch 11
    assert short.batch_size == 4


def test_drop_removes_an_owners_queued_clips():
    import numpy as np

    async def main():
        gate = threading.Event()
        batcher = MicroBatcher(lambda audios, *_: (gate.wait(5), [_T() for _ in audios])[1], max_batch=2, window_ms=0)
        batcher.start()
        owner = object()
        jobs = [asyncio.ensure_future(batcher.submit(np.zeros(2), "ko", owner=owner)) for _ in range(10)]
        await asyncio.sleep(0.05)
        before = batcher.queue_depth
        dropped = batcher.drop(owner)
        gate.set()
        await asyncio.gather(*jobs, return_exceptions=True)
        await batcher.stop()
        return before, dropped, batcher.queue_depth, sum(j.cancelled() for j in jobs)

    before, dropped, after, cancelled = asyncio.run(main())
    assert before == 8 and dropped == 8 and after == 0 and cancelled == 8


def test_short_request_is_served_while_a_long_upload_runs(make_server, slow_backend, bomb, noise_wav):
    backend = slow_backend(0.15)
    srv = make_server(backend, max_batch=4, batch_window_ms=0)
    long_done = {}

    def long_upload():
        r = httpx.post(srv.url + "/v1/audio/transcriptions", files={"file": ("long.flac", bomb(1200))}, timeout=120)
        long_done["status"] = r.status_code
        long_done["t"] = time.perf_counter()

    t = threading.Thread(target=long_upload)
    t.start()
    time.sleep(1.0)  # the long upload (~48 chunks, ~2 s of model time at 4 a batch) is under way
    t0 = time.perf_counter()
    r = httpx.post(srv.url + "/v1/audio/transcriptions", files={"file": ("short.wav", noise_wav(3.0))}, timeout=60)
    short_done = time.perf_counter()
    t.join(120)
    assert r.status_code == 200 and long_done["status"] == 200
    assert short_done - t0 < 1.5  # a batch or two, not the long upload's remaining chunks
    assert short_done < long_done["t"]


def test_queued_work_is_dropped_when_the_client_disconnects(make_server, slow_backend, bomb):
    backend = slow_backend(0.2)
    srv = make_server(backend, max_batch=2, batch_window_ms=0)
    batcher = srv.app.state.serve.batcher
    with pytest.raises(httpx.TimeoutException):
        httpx.post(srv.url + "/v1/audio/transcriptions", files={"file": ("long.flac", bomb(1200))}, timeout=1.5)
    time.sleep(1.5)  # disconnect noticed (polled every 0.25 s), queued chunks dropped
    clips = backend.clips
    assert batcher.queue_depth == 0
    time.sleep(1.0)
    assert backend.clips - clips <= 2  # at most the batch that was running
    assert clips < 40  # a 20-min upload is 40+ chunks: most were never run


def test_request_deadline_gives_504_and_drops_its_work(make_server, slow_backend, bomb):
    backend = slow_backend(0.2)
    srv = make_server(backend, max_batch=2, batch_window_ms=0, request_timeout_s=1.0)
    r = httpx.post(srv.url + "/v1/audio/transcriptions", files={"file": ("long.flac", bomb(1200))}, timeout=30)
    assert r.status_code == 504 and r.json()["error"]["code"] == "request_timeout"
    time.sleep(0.5)
    assert srv.app.state.serve.batcher.queue_depth == 0
    clips = backend.clips
    time.sleep(0.8)
    assert backend.clips - clips <= 2


def test_a_long_upload_holds_at_most_its_chunk_cap_at_the_model(make_server, slow_backend, bomb):
    backend = slow_backend(0.05)
    srv = make_server(backend, max_batch=8, batch_window_ms=0, max_chunks_per_request=2)
    r = httpx.post(srv.url + "/v1/audio/transcriptions", files={"file": ("long.flac", bomb(600))}, timeout=60)
    assert r.status_code == 200
    assert backend.clips >= 20 and max(len(b) for b in backend.batches) <= 2
