"""GPU paths of the benchmarks (skipped without CUDA; the CPU tests cover them through fakes)."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.gpu


def test_memory_meter_on_cuda():
    import torch

    from soritune.bench.memory import MemoryMeter

    meter = MemoryMeter("cuda", interval_s=0.001).start()
    x = torch.empty(64 * 1024 * 1024, dtype=torch.uint8, device="cuda")
    x.fill_(1)
    reading = meter.stop()
    del x
    assert reading.gpu_allocated_delta_mb >= 63
    assert reading.gpu_peak_reserved_mb >= reading.gpu_peak_allocated_mb
    assert reading.gpu_peak_device_used_mb > 0


def test_bench_infer_on_cuda(tmp_path):
    from soritune.bench.infer_bench import InferBenchConfig, run

    result = run(InferBenchConfig(model="tiny:", synthetic=2, batch_sizes=[1, 2], repeats=2, attn=["sdpa"],
                                  max_new_tokens=8, device="cuda", out=str(tmp_path)))
    assert result.errors == []
    labels = {r.label for r in result.rows}
    assert {"soritune ct2 float16", "soritune ct2 int8_float16", "soritune torch float16 sdpa",
            "faster-whisper float16", "HF generate float32 sdpa"} <= labels
    for r in result.rows:
        assert r.ttft_ms["median"] > 0 and r.rtfx["median"] > 0
        if r.backend in ("torch", "hf"):
            assert r.memory["gpu_peak_allocated_mb"] > 0
        assert r.memory["gpu_peak_device_used_mb"] > 0
    assert result.environment["gpu_name"]


def test_bench_train_on_cuda(tmp_path):
    from soritune.bench.train_bench import run

    result = run({"model": "tiny:", "methods": ["lora", "qlora4"], "batch_size": 2, "steps": 2, "synthetic": 4,
                  "device": "cuda", "out": str(tmp_path)})
    assert result.errors == []
    assert all(r.memory_kind == "gpu allocated" and r.peak_mem_mb > 0 for r in result.rows)
