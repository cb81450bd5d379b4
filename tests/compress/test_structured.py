"""Structured pruning: the model shrinks, outputs stay valid, and removal equals zeroing the structure."""

from __future__ import annotations

import copy
import json

import pytest
import torch

from soritune.compress import structures as S
from soritune.compress.prune_structured import StructuredConfig, run
from soritune.models import load


def _logits(model, processor, n_frames: int = 3000):
    torch.manual_seed(0)
    feats = torch.randn(2, processor.feature_extractor.feature_size, n_frames)
    dec = torch.tensor([[50258, 50264, 50359, 50363, 400, 500]] * 2)
    with torch.no_grad():
        return model(input_features=feats, decoder_input_ids=dec).logits


def test_removing_heads_equals_zeroing_their_output(tiny_model):
    model, proc = tiny_model
    kept = S.choose_kept(S.magnitude_importance(model, "heads", "both"), 0.5)
    small = S.prune_heads(model, kept)
    ref = copy.deepcopy(model)
    mods = dict(ref.named_modules())
    with torch.no_grad():
        for name, idx in kept.items():
            attn = mods[name]
            for h in set(range(attn.num_heads)) - set(idx):
                attn.out_proj.weight[:, h * attn.head_dim:(h + 1) * attn.head_dim] = 0
    assert sum(p.numel() for p in small.parameters()) < sum(p.numel() for p in model.parameters())
    assert torch.allclose(_logits(small, proc), _logits(ref, proc), atol=1e-5)


def test_removing_ffn_channels_equals_zeroing_them(tiny_model):
    model, proc = tiny_model
    kept = S.choose_kept(S.magnitude_importance(model, "ffn", "both"), 0.25)
    small = S.shrink_ffn(model, kept)
    assert small.config.encoder_ffn_dim == small.config.decoder_ffn_dim == 48
    ref = copy.deepcopy(model)
    mods = dict(ref.named_modules())
    with torch.no_grad():
        for name, idx in kept.items():
            drop = sorted(set(range(64)) - set(idx))
            mods[name].fc2.weight[:, drop] = 0
    assert torch.allclose(_logits(small, proc), _logits(ref, proc), atol=1e-5)


def test_layer_pruning_keeps_valid_outputs(tiny_model):
    model, proc = tiny_model
    small = S.keep_layers(model, {"decoder": [1]})
    assert small.config.decoder_layers == 1 and len(small.model.decoder.layers) == 1
    assert torch.equal(small.model.decoder.layers[0].fc1.weight, model.model.decoder.layers[1].fc1.weight)
    assert _logits(small, proc).shape == _logits(model, proc).shape
    feats = proc.feature_extractor([torch.zeros(16000).numpy()], sampling_rate=16000, return_tensors="pt").input_features
    seq = small.generate(input_features=feats, language="ko", task="transcribe", max_new_tokens=4)
    assert seq.shape[0] == 1 and seq.shape[1] >= 1


def test_choose_kept_removes_the_lowest_and_keeps_one():
    kept = S.choose_kept({"a": torch.tensor([0.3, 0.1, 0.2, 0.9]), "b": torch.tensor([1.0, 2.0])}, 0.5)
    assert kept["a"] == [0, 3] and kept["b"] == [1]
    assert S.choose_kept({"c": torch.tensor([1.0, 2.0])}, 0.99)["c"] == [1]


@pytest.mark.parametrize("target,fraction", [("heads", 0.5), ("ffn", 0.5), ("layers", 0.5)])
def test_run_shrinks_saves_and_reloads(tmp_path, target, fraction):
    out = tmp_path / target
    r = run(StructuredConfig(model="tiny:", target=target, fraction=fraction, out=out, measure_speed=False,
                             max_new_tokens=4, repeats=1))
    assert r.params_after < r.params_before and r.file_mb_after < r.file_mb_before
    assert r.loads_as_standard_hf == (target != "heads")
    assert (out / "structure.json").exists() == (target == "heads")
    report = json.loads((out / "prune_report.json").read_text())
    assert report["params_after"] == r.params_after and report["removed"]
    bundle = load(str(out))
    assert sum(p.numel() for p in bundle.model.parameters()) == r.params_after
    if target != "heads":  # FFN- and layer-pruned models are standard configs
        assert sum(p.numel() for p in load(f"hf:{out}").model.parameters()) == r.params_after


def test_head_pruned_model_reloads_with_the_same_outputs(tmp_path, tiny_model):
    model, proc = tiny_model
    from soritune.compress.prune_structured import save_structured

    kept = S.choose_kept(S.magnitude_importance(model, "heads", "decoder"), 0.5)
    small = S.prune_heads(model, kept)
    save_structured(small, proc, tmp_path, "heads", kept)
    back = load(str(tmp_path))
    assert torch.allclose(_logits(back.model, proc), _logits(small, proc), atol=1e-6)


def test_taylor_score_uses_calibration_gradients(corpus, tiny_model):
    model, proc = tiny_model
    from soritune.compress.prune_structured import calibration_batches

    scores = S.taylor_importance(model, "ffn", "decoder", calibration_batches(str(corpus / "train.jsonl"), proc, 2, 2))
    assert set(scores) == {"model.decoder.layers.0", "model.decoder.layers.1"}
    assert all(s.shape == (64,) and bool((s >= 0).all()) and float(s.sum()) > 0 for s in scores.values())
    mag = S.magnitude_importance(model, "ffn", "decoder")
    assert not torch.equal(torch.argsort(scores["model.decoder.layers.0"]), torch.argsort(mag["model.decoder.layers.0"]))
    assert all(p.grad is None for p in model.parameters())


def test_taylor_needs_a_calibration_manifest():
    from soritune.config import validate
    from soritune.errors import ConfigError

    with pytest.raises(ConfigError, match="calib_manifest"):
        validate(StructuredConfig, {"model": "tiny:", "out": "x", "score": "taylor"})
