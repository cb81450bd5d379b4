"""NaN/inf guard, CUDA out-of-memory handling (simulated), early stopping."""

from __future__ import annotations

import pytest
import torch

from soritune.train import run
from soritune.train.checkpoint import list_checkpoints
from soritune.train.efficiency import WhisperLoss
from soritune.train.loop import TrainOOMError
from soritune.train.metrics_log import read_metrics


def test_nan_loss_stops_with_message_and_keeps_last_good(make_cfg, monkeypatch):
    calls = {"n": 0}
    real = WhisperLoss.forward

    def poisoned(self, *a, **kw):
        calls["n"] += 1
        out = real(self, *a, **kw)
        return out * float("nan") if calls["n"] == 4 else out

    monkeypatch.setattr(WhisperLoss, "forward", poisoned)
    cfg = make_cfg(max_steps=6, save_every=2, export="last")
    res = run(cfg)
    assert res.status == "nan" and res.steps == 3
    assert "not finite" in res.message and "step 4" in res.message
    assert [s for s, _ in list_checkpoints(cfg.run_dir())] == [2]
    assert res.exported_step == 3 and (cfg.run_dir() / "adapter").exists()


def _oom_above(limit):
    real = WhisperLoss.forward

    def forward(self, input_features, *a, **kw):
        if input_features.shape[0] > limit:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real(self, input_features, *a, **kw)

    return forward


def test_oom_names_a_batch_size_that_fits(make_cfg, monkeypatch):
    monkeypatch.setattr(WhisperLoss, "forward", _oom_above(1))
    with pytest.raises(TrainOOMError, match=r"batch size 4 per device; batch size 1 fits.*--batch-size 1 --grad-accum 4"):
        run(make_cfg(max_steps=2, batch_size=4))


def test_auto_batch_splits_and_gives_the_same_update(make_cfg, monkeypatch, tmp_path):
    ref = run(make_cfg(max_steps=3, out=str(tmp_path / "ref"), lora_dropout=0.0))
    monkeypatch.setattr(WhisperLoss, "forward", _oom_above(2))
    res = run(make_cfg(max_steps=3, out=str(tmp_path / "auto"), auto_batch=True, lora_dropout=0.0))
    rows = [r for r in read_metrics(tmp_path / "auto" / "metrics.jsonl") if "loss" in r]
    assert rows[-1]["micro_split"] == 2
    assert res.final_loss == pytest.approx(ref.final_loss, rel=1e-5)


def test_early_stopping(make_cfg, corpus, monkeypatch):
    from soritune.train import dev_eval

    scores = iter([0.5, 0.4, 0.45, 0.41, 0.42, 0.3])
    real = dev_eval.score_dev

    def fake(*a, **kw):
        s = real(*a, **kw)
        s.cer = next(scores)
        return s

    monkeypatch.setattr(dev_eval, "score_dev", fake)
    res = run(make_cfg(dev=str(corpus / "dev.jsonl"), eval_every=1, max_steps=10, early_stopping_patience=3,
                       eval_at_start=False, eval_max_new_tokens=2))
    assert res.status == "early_stopping" and res.steps == 5
    assert res.best_dev_cer == 0.4 and res.best_step == 2 and res.exported_step == 2
