"""Micro-batching with a fake model: what goes together, how long it waits, failure isolation."""

from __future__ import annotations

import asyncio
import threading
import time

import numpy as np
import pytest

from soritune.infer import Transcription
from soritune.serve.batcher import MicroBatcher


class FakeModel:
    """Records each call; echoes the first sample of each clip so results can be matched to inputs."""

    def __init__(self, delay_s: float = 0.05, fail_on: float | None = None):
        self.calls: list[tuple[int, str, str]] = []
        self.delay_s, self.fail_on = delay_s, fail_on
        self.threads: set[str] = set()

    def __call__(self, audios, language, task):
        self.threads.add(threading.current_thread().name)
        self.calls.append((len(audios), language, task))
        time.sleep(self.delay_s)
        if self.fail_on is not None and any(a[0] == self.fail_on for a in audios):
            raise RuntimeError("bad clip")
        return [Transcription(text=f"{a[0]:g}") for a in audios]


def clip(value: float) -> np.ndarray:
    return np.full(160, value, dtype=np.float32)


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, timeout=30))


def test_concurrent_clips_share_a_call_and_results_match_inputs():
    model = FakeModel()

    async def main():
        b = MicroBatcher(model, max_batch=8, window_ms=200)
        b.start()
        try:
            results = await asyncio.gather(*(b.submit(clip(i), "ko") for i in range(6)))
        finally:
            await b.stop()
        return b, results

    b, results = run(main())
    assert [r.transcription.text for r in results] == [str(i) for i in range(6)]
    assert model.calls == [(6, "ko", "transcribe")]
    assert all(r.batch_size == 6 for r in results)
    assert b.stats.max_batch_size == 6 and b.stats.batches == 1
    assert all(name.startswith("soritune-model") for name in model.threads)  # off the event loop


def test_max_batch_splits_and_languages_never_mix():
    model = FakeModel()

    async def main():
        b = MicroBatcher(model, max_batch=3, window_ms=100)
        b.start()
        try:
            jobs = [b.submit(clip(i), "ko") for i in range(5)] + [b.submit(clip(9), "en", "translate")]
            return await asyncio.gather(*jobs)
        finally:
            await b.stop()

    results = run(main())
    assert sorted(model.calls) == sorted([(3, "ko", "transcribe"), (2, "ko", "transcribe"), (1, "en", "translate")])
    assert results[-1].transcription.text == "9"


def test_max_batch_one_turns_batching_off_and_does_not_wait():
    model = FakeModel(delay_s=0.0)

    async def main():
        b = MicroBatcher(model, max_batch=1, window_ms=2000)
        b.start()
        t0 = time.perf_counter()
        try:
            await asyncio.gather(*(b.submit(clip(i), "ko") for i in range(4)))
        finally:
            await b.stop()
        return time.perf_counter() - t0

    elapsed = run(main())
    assert [c[0] for c in model.calls] == [1, 1, 1, 1]
    assert elapsed < 1.0  # a full batch (of one) never waits for the window


def test_lone_clip_waits_at_most_the_window():
    model = FakeModel(delay_s=0.0)

    async def main():
        b = MicroBatcher(model, max_batch=8, window_ms=150)
        b.start()
        t0 = time.perf_counter()
        try:
            res = await b.submit(clip(1), "ko")
        finally:
            await b.stop()
        return res, time.perf_counter() - t0

    res, elapsed = run(main())
    assert 0.14 <= elapsed < 1.5
    assert res.queue_ms >= 140


def test_clips_arriving_while_the_model_is_busy_form_the_next_batch():
    model = FakeModel(delay_s=0.3)

    async def main():
        b = MicroBatcher(model, max_batch=8, window_ms=0)
        b.start()
        try:
            first = asyncio.ensure_future(b.submit(clip(0), "ko"))
            await asyncio.sleep(0.1)  # the model is now busy with clip 0
            rest = await asyncio.gather(*(b.submit(clip(i), "ko") for i in range(1, 5)))
            return [await first] + rest
        finally:
            await b.stop()

    run(main())
    assert [c[0] for c in model.calls] == [1, 4]


def test_a_failing_clip_fails_alone():
    model = FakeModel(delay_s=0.0, fail_on=2.0)

    async def main():
        b = MicroBatcher(model, max_batch=8, window_ms=100)
        b.start()
        try:
            return await asyncio.gather(*(b.submit(clip(i), "ko") for i in range(4)), return_exceptions=True)
        finally:
            await b.stop()

    results = run(main())
    assert isinstance(results[2], RuntimeError)
    assert [r.transcription.text for i, r in enumerate(results) if i != 2] == ["0", "1", "3"]
    assert model.calls[0][0] == 4 and all(c[0] == 1 for c in model.calls[1:])


def test_invalid_settings_and_submit_before_start():
    with pytest.raises(ValueError):
        MicroBatcher(FakeModel(), max_batch=0)
    with pytest.raises(ValueError):
        MicroBatcher(FakeModel(), window_ms=-1)

    async def main():
        await MicroBatcher(FakeModel()).submit(clip(0), "ko")

    with pytest.raises(RuntimeError):
        run(main())
