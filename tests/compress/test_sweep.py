"""Sparsity sweep: knee rule, CSR measurements, and a tiny one-shot sweep writing table + PNG."""

from __future__ import annotations

import json

import pytest
import torch

from soritune.compress.sweep import (
    SweepConfig,
    SweepPoint,
    csr_bytes,
    csr_matmul_bench,
    knee,
    run,
)


def _p(s, delta):
    return SweepPoint(sparsity=s, mask_sparsity=s, cer=0.1, cer_delta_points=delta, file_mb=1.0, csr_mb=None,
                      latency_median_s=None, rtfx=None, n_hyp_chars=0, csr_matmul_speedup=None)


def test_knee_is_the_last_point_before_degradation():
    pts = [_p(0.0, 0.0), _p(0.1, 0.2), _p(0.3, 0.5), _p(0.5, 0.9), _p(0.7, 4.0), _p(0.9, 30.0)]
    assert knee(pts, 1.0) == 0.5
    assert knee(pts, 0.1) is None
    # a later point that happens to recover does not move the knee past a failure
    assert knee([_p(0.0, 0), _p(0.1, 2.0), _p(0.3, 0.0)], 1.0) is None


def test_csr_sizes_and_bench_are_measured():
    w = torch.randn(64, 32)
    m = torch.rand(64, 32) > 0.9  # keep ~10%
    size = csr_bytes({"w": w}, {"w": m})
    nnz = int(m.sum())
    assert size == nnz * 4 + nnz * 8 + 65 * 8  # float32 values, int64 column indices and row pointers
    bench = csr_matmul_bench(w * m, repeats=1)
    assert bench["shape"] == [64, 32] and bench["decode_8"] > 0 and bench["encoder_1500"] > 0


def test_tiny_sweep_writes_table_curve_and_knee(tmp_path, corpus):
    r = run(SweepConfig(model="tiny:", eval_manifest=str(corpus / "dev.jsonl"), sparsity=[0.5, 0.9], out=tmp_path,
                        max_new_tokens=3, repeats=1))
    assert [p.sparsity for p in r.points] == [0.0, 0.5, 0.9]
    assert [p.mask_sparsity for p in r.points] == [0.0, 0.5, 0.9]
    assert r.points[0].cer_delta_points == 0.0 and r.points[0].csr_mb is None
    assert r.points[2].csr_mb < r.points[1].csr_mb  # sparser -> fewer CSR bytes
    assert all(p.latency_median_s > 0 for p in r.points) and r.points[1].csr_matmul_speedup is not None
    png = (tmp_path / "sweep.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    md = (tmp_path / "sweep.md").read_text()
    assert "| 50% |" in md and "Knee" in md
    data = json.loads((tmp_path / "sweep.json").read_text())
    assert data["knee_sparsity"] == r.knee_sparsity and data["published_knee"] == 0.5


def test_lottery_sweep_needs_training_data():
    from soritune.config import validate
    from soritune.errors import ConfigError

    with pytest.raises(ConfigError, match="needs train"):
        validate(SweepConfig, {"model": "tiny:", "out": "x", "method": "lottery"})
    with pytest.raises(ConfigError, match="sparsity"):
        validate(SweepConfig, {"model": "tiny:", "out": "x", "sparsity": [0.5, 1.0]})
