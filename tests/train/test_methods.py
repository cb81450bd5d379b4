"""Every method trains tiny: on CPU (QLoRA through bitsandbytes' CPU path) and the loss falls; the
outputs load where the rest of soritune loads adapters and models."""

from __future__ import annotations

import json

import pytest
import torch

from soritune.train import run
from soritune.train.metrics_log import read_metrics


def _losses(run_dir):
    return [r["loss"] for r in read_metrics(run_dir / "metrics.jsonl") if "loss" in r]


@pytest.mark.parametrize("method,lr", [("lora", 1e-2), ("dora", 1e-2), ("qlora8", 1e-2), ("qlora4", 1e-2), ("full", 3e-3)])
def test_method_trains_and_loss_falls(make_cfg, method, lr):
    cfg = make_cfg(method=method, lr=lr, max_steps=8, target="all-linear")
    res = run(cfg)
    losses = _losses(cfg.run_dir())
    assert res.status == "completed" and res.steps == 8 and len(losses) == 8
    assert losses[-1] < losses[0] - 0.05, losses
    assert 0 < res.trainable_params <= res.total_params
    summary = json.loads((cfg.run_dir() / "summary.json").read_text())
    for key in ("samples_per_s", "peak_mem_gb", "train_wall_s", "final_loss", "best_dev_cer", "trainable_params",
                "total_params", "device", "versions"):
        assert key in summary
    assert summary["samples_per_s"] > 0 and summary["peak_mem_gb"] > 0
    sub = "model" if method == "full" else "adapter"
    assert (cfg.run_dir() / sub).is_dir()


def test_adapter_loads_everywhere_and_merge_matches(make_cfg, corpus):
    from soritune.audio import load_audio
    from soritune.infer import load_backend
    from soritune.models import load
    from soritune.models.adapters import apply_adapter

    cfg = make_cfg(method="lora", max_steps=6, merge=True, lr=5e-2)
    res = run(cfg)
    adapter = cfg.run_dir() / "adapter"
    assert (adapter / "adapter_config.json").exists() and res.merged_dir
    base, _ = load("tiny:")
    tuned = apply_adapter(load("tiny:").model, adapter, merge=False)
    merged, _ = load(res.merged_dir)
    feats = torch.randn(1, 80, 3000)
    dec = torch.tensor([[50258, 50264, 50359, 50363, 100]])
    with torch.no_grad():
        a = tuned(input_features=feats, decoder_input_ids=dec).logits
        b = merged(input_features=feats, decoder_input_ids=dec).logits
        c = base(input_features=feats, decoder_input_ids=dec).logits
    assert torch.allclose(a, b, atol=1e-4)
    assert not torch.allclose(a, c, atol=1e-4)  # the adapter did something
    audio = load_audio(corpus / "u0.wav")
    backend = load_backend("tiny:", adapter=str(adapter))
    assert len(backend.transcribe([audio], max_new_tokens=5)) == 1


def test_full_ft_model_dir_loads(make_cfg):
    from soritune.models import load

    cfg = make_cfg(method="full", max_steps=2, lr=1e-3)
    run(cfg)
    loaded = load(str(cfg.run_dir() / "model"))
    assert loaded.model.config.d_model == 32


def test_decoder_only_lora_uses_frozen_encoder_and_cache(make_cfg):
    cfg = make_cfg(method="lora", target_side="decoder", cache_encoder=True, max_steps=6)
    res = run(cfg)
    assert res.encoder_cache_hits > 0  # 8 clips, batch 4: epochs 2 and 3 hit the cache
    losses = _losses(cfg.run_dir())
    assert losses[-1] < losses[0]


def test_dev_cer_is_scored_and_best_exported(make_cfg, corpus):
    cfg = make_cfg(dev=str(corpus / "dev.jsonl"), eval_every=2, max_steps=4, eval_at_start=True,
                   eval_max_new_tokens=8)
    res = run(cfg)
    rows = read_metrics(cfg.run_dir() / "metrics.jsonl")
    evals = [r for r in rows if "dev_cer" in r]
    assert [r["step"] for r in evals] == [0, 2, 4]
    assert res.initial_dev_cer is not None and res.best_dev_cer is not None and res.best_step in (2, 4)
    assert res.exported_step == res.best_step
    assert (cfg.run_dir() / "dev_predictions.jsonl").exists()
