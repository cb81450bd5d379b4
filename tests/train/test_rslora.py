"""rsLoRA, added as one module (train/methods/rslora.py) plus one registry line: it scales by
alpha / sqrt(r), trains, and its adapter loads back through models.load like any LoRA."""

from __future__ import annotations

import json

import pytest
import torch

from soritune.config import validate
from soritune.train.config import TrainConfig


def _scalings(model) -> set[float]:
    return {round(m.scaling["default"], 6) for m in model.modules()
            if isinstance(getattr(m, "scaling", None), dict) and "default" in m.scaling}


def test_rslora_scales_by_the_square_root_of_the_rank(tiny):
    from soritune.train.adapters import build_model

    fields = dict(model="tiny:", train="t.jsonl", out="o", lora_r=16, lora_alpha=8, target="qv")
    rs = build_model(validate(TrainConfig, {**fields, "adapter": "rslora"}))
    plain = build_model(validate(TrainConfig, {**fields, "adapter": "lora"}))
    assert _scalings(rs.model) == {round(8 / 16 ** 0.5, 6)}
    assert _scalings(plain.model) == {round(8 / 16, 6)}
    assert rs.trainable_params == plain.trainable_params


def test_rslora_trains_and_its_adapter_loads_back(make_cfg):
    from soritune.models import load
    from soritune.train import run
    from soritune.train.metrics_log import read_metrics

    cfg = make_cfg(adapter="rslora", lr=1e-2, max_steps=8, target="all-linear")
    res = run(cfg)
    losses = [r["loss"] for r in read_metrics(cfg.run_dir() / "metrics.jsonl") if "loss" in r]
    assert res.status == "completed" and losses[-1] < losses[0] - 0.05, losses
    adapter = cfg.run_dir() / "adapter"
    assert json.loads((adapter / "adapter_config.json").read_text())["use_rslora"] is True
    tuned, base = load(str(cfg.run_dir())), load("tiny:")  # the run dir names its base and adapter
    feats = torch.randn(1, 80, 3000)
    dec = torch.tensor([[50258, 50264, 50359, 50363]])
    with torch.no_grad():
        a = tuned.model(input_features=feats, decoder_input_ids=dec).logits
        b = base.model(input_features=feats, decoder_input_ids=dec).logits
    assert tuned.adapter == str(adapter) and not torch.allclose(a, b, atol=1e-4)


@pytest.mark.parametrize("quantization", ["8bit"])
def test_rslora_runs_on_a_quantised_base(tiny, quantization):
    from soritune.train.adapters import build_model

    built = build_model(validate(TrainConfig, dict(model="tiny:", train="t", out="o", adapter="rslora",
                                                   quantization=quantization, target="qv")))
    assert built.info["adapter"] == "rslora" and built.info["quantization"] == quantization
