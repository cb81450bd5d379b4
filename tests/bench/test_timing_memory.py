"""Timing and memory helpers, including their CUDA paths (through fakes: this box has no GPU)."""

from __future__ import annotations

import pytest

from soritune.bench import memory, timing


def test_summarize_median_min_max_and_none():
    s = timing.summarize([3.0, None, 1.0, 2.0])
    assert s == {"median": 2.0, "min": 1.0, "max": 3.0, "n": 3}
    assert timing.summarize([None])["median"] is None


def test_from_step_times_ttft_tpot_and_prediction():
    t = timing.from_step_times(10.0, [10.5, 10.6, 10.7, 10.8], 10.85)
    assert t.ttft_s == pytest.approx(0.5)
    assert t.tpot_s == pytest.approx(0.1)
    assert t.n_steps == 4
    assert t.latency_s == pytest.approx(0.85)
    # TTFT + (n-1) TPOT is the time of the last step
    assert timing.predicted_latency_s(t.ttft_s, t.tpot_s, t.n_steps) == pytest.approx(0.8)
    assert timing.relative_error(0.8, 0.85) == pytest.approx(0.05 / 0.85)
    one = timing.from_step_times(0.0, [0.3], 0.3)
    assert one.tpot_s is None and timing.predicted_latency_s(one.ttft_s, one.tpot_s, 1) == pytest.approx(0.3)
    with pytest.raises(ValueError):
        timing.from_step_times(0.0, [], 1.0)


def test_from_phases_splits_first_step_from_the_rest():
    # features+encoder 0.4 s, 1-token generate 0.1 s (ends at t=0.5), full generate of 11 steps 0.6 s
    t = timing.from_phases(0.0, 0.5, first_gen_s=0.1, full_gen_s=0.6, n_steps=11)
    assert t.ttft_s == pytest.approx(0.5)
    assert t.tpot_s == pytest.approx(0.05)
    assert t.latency_s == pytest.approx(1.0)  # 0.4 + 0.6: what one plain generate from features takes
    assert timing.predicted_latency_s(t.ttft_s, t.tpot_s, t.n_steps) == pytest.approx(t.latency_s)


def test_step_streamer_drops_the_prompt_put():
    ticks = iter([1.0, 2.0, 2.5, 3.0])
    s = timing.StepStreamer("cpu", clock_fn=lambda device: next(ticks))
    for _ in range(4):
        s.put(None)
    s.end()
    assert s.ended and s.step_times() == [2.0, 2.5, 3.0]


def test_clock_synchronises_cuda_only(monkeypatch):
    import torch

    calls = []
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: calls.append(device))
    timing.clock("cpu")
    assert calls == []
    timing.clock("cuda:0")
    assert calls == ["cuda:0"]


def test_memory_meter_sees_a_cpu_allocation():
    # In a fresh process: after hundreds of tests this one's allocator may serve 64 MiB from memory that is
    # already resident (RSS would not grow), which says nothing about the meter.
    import json
    import subprocess
    import sys

    code = """
import json, numpy as np
from soritune.bench import memory
meter = memory.MemoryMeter("cpu", interval_s=0.002).start()
block = np.ones(64 * 1024 * 1024 // 8)  # 64 MiB, touched
block[::512] = 2.0
reading = meter.stop()
del block
try:
    meter.stop()
    twice = False
except RuntimeError:
    twice = True
print(json.dumps({"gpu": reading.gpu_peak_allocated_mb, "delta": reading.rss_delta_mb, "peak": reading.peak_rss_mb,
                  "start": reading.start_rss_mb, "max": reading.max_rss_mb, "twice": twice}))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    reading = json.loads(out.stdout.strip().splitlines()[-1])
    assert reading["gpu"] is None
    assert reading["delta"] > 40
    assert reading["peak"] >= reading["start"]
    assert reading["max"] >= reading["peak"] - 1
    assert reading["twice"], "a second stop() must raise"


class FakeCuda:
    def __init__(self):
        self.resets = 0
        self.used = iter([100, 300, 250] + [120] * 10000)

    def reset_peak(self):
        self.resets += 1

    def allocated(self):
        return 10 * memory.MB

    def reserved(self):
        return 20 * memory.MB

    def max_allocated(self):
        return 50 * memory.MB

    def max_reserved(self):
        return 64 * memory.MB

    def device_used(self):
        return next(self.used) * memory.MB


def test_memory_meter_gpu_path_with_a_fake_device():
    fake = FakeCuda()
    meter = memory.MemoryMeter("cuda:0", interval_s=0.001, cuda=fake)
    meter.start()
    reading = meter.stop()
    assert fake.resets == 1
    assert reading.gpu_start_allocated_mb == 10 and reading.gpu_peak_allocated_mb == 50
    assert reading.gpu_peak_reserved_mb == 64
    assert reading.gpu_allocated_delta_mb == 40
    assert reading.gpu_start_device_used_mb == 100 and reading.gpu_peak_device_used_mb == 300
    assert reading.gpu_device_used_delta_mb == 200


def test_cuda_stats_calls_torch_cuda(monkeypatch):
    import torch

    seen = []
    monkeypatch.setattr(torch.cuda, "synchronize", lambda d=None: seen.append("sync"))
    monkeypatch.setattr(torch.cuda, "reset_peak_memory_stats", lambda d=None: seen.append("reset"))
    monkeypatch.setattr(torch.cuda, "memory_allocated", lambda d=None: 1)
    monkeypatch.setattr(torch.cuda, "memory_reserved", lambda d=None: 2)
    monkeypatch.setattr(torch.cuda, "max_memory_allocated", lambda d=None: 3)
    monkeypatch.setattr(torch.cuda, "max_memory_reserved", lambda d=None: 4)
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda d=None: (6, 10))
    c = memory.CudaStats("cuda:0")
    c.reset_peak()
    assert seen == ["sync", "reset"]
    assert (c.allocated(), c.reserved(), c.max_allocated(), c.max_reserved(), c.device_used()) == (1, 2, 3, 4, 4)
    assert isinstance(memory.MemoryMeter("cuda").cuda, memory.CudaStats)
    assert memory.MemoryMeter("cpu").cuda is None


def test_environment_block():
    from soritune.environment import describe_device, environment

    env = environment("cpu", threads=2)
    for key in ("cpu_model", "cpu_count", "threads", "versions", "device"):
        assert key in env
    for pkg in ("torch", "transformers", "ctranslate2", "faster-whisper"):
        assert env["versions"][pkg]
    assert "2 threads" in describe_device(env)
    assert describe_device({"gpu_name": "NVIDIA H100", "driver": "550", "cuda": "12.4"}).startswith("NVIDIA H100")
