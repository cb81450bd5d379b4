"""Magnitude pruning: exact sparsity, masks saved with the model, surviving save/load and LoRA merge."""

from __future__ import annotations

import json

import pytest
import torch

from soritune.compress.masks import MASK_FILE, apply_masks, load_masks, weight_sparsity
from soritune.compress.prune_magnitude import MagnitudeConfig, run
from soritune.models import load

from .conftest import make_adapter


@pytest.fixture(scope="module")
def pruned(tmp_path_factory):
    out = tmp_path_factory.mktemp("mag") / "p50"
    return run(MagnitudeConfig(model="tiny:", sparsity=0.5, out=out)), out


def test_sparsity_reached_exactly_and_reported_honestly(pruned):
    result, out = pruned
    assert result.n_pruned == round(0.5 * result.n_prunable)
    assert result.mask_sparsity == 0.5 and result.weight_sparsity >= 0.5
    assert 0 < result.model_sparsity < 0.5  # embeddings, convs, norms are not pruned
    assert result.file_mb >= 0.95 * result.dense_mb  # zeros are stored densely: no smaller file
    assert "no sparse kernel" in result.sparsity_note
    report = json.loads((out / "prune_report.json").read_text())
    assert report["mask_sparsity"] == 0.5 and report["details"]["pruned_entries_zero"] is True
    assert (out / MASK_FILE).exists() and (out / "config.json").exists() and (out / "config.yaml").exists()


def test_masks_persist_through_save_and_load(pruned):
    _, out = pruned

    plain = load(f"hf:{out}")  # a plain Hugging Face directory: the zeros are in the weights
    masks = load_masks(out)
    assert weight_sparsity(plain.model, masks) >= 0.5
    params = dict(plain.model.named_parameters())
    assert all(bool((params[n][~m] == 0).all()) for n, m in masks.items())
    bundle = load(str(out))
    assert bundle.masks is not None and set(bundle.masks) == set(masks)


def test_masks_survive_lora_merge(pruned, tmp_path):
    _, out = pruned
    masks = load_masks(out)
    from soritune.models.adapters import apply_adapter

    adapter = make_adapter(load(f"hf:{out}").model, tmp_path / "adapter")
    # a plain merge revives pruned q/v weights (this is what the re-application has to undo) ...
    merged_plain = apply_adapter(load(f"hf:{out}").model, adapter, merge=True)
    q = "model.encoder.layers.0.self_attn.q_proj.weight"
    assert bool((dict(merged_plain.named_parameters())[q][~masks[q]] != 0).any())
    # ... models.load re-applies the masks after merging
    bundle = load(str(out), adapter=str(adapter))
    params = dict(bundle.model.named_parameters())
    assert all(bool((params[n][~m] == 0).all()) for n, m in masks.items())
    assert not torch.equal(params[q], dict(load(f"hf:{out}").model.named_parameters())[q])  # the adapter did merge


def test_pruning_a_pruned_model_keeps_its_zeros(pruned, tmp_path):
    _, out = pruned
    r = run(MagnitudeConfig(model=str(out), sparsity=0.7, scope="layer", out=tmp_path / "p70"))
    first, second = load_masks(out), load_masks(tmp_path / "p70")
    assert all(bool((~second[n])[~first[n]].all()) for n in first)
    assert r.mask_sparsity == pytest.approx(0.7, abs=1e-3)


def test_apply_masks_rejects_masks_of_another_model(tiny):
    from soritune.errors import CompressError

    with pytest.raises(CompressError, match="unknown"):
        apply_masks(tiny.model, {"model.encoder.layers.9.fc1.weight": torch.ones(2, 2, dtype=torch.bool)})


def test_registry_runs_a_method_by_name(tmp_path):
    from soritune.compress.registry import PRUNE_METHODS, prune
    from soritune.errors import ConfigError

    r = prune("magnitude", model="tiny:", sparsity=0.2, modules=["fc1", "fc2"], out=str(tmp_path))
    assert r.n_pruned == round(0.2 * r.n_prunable) and set(PRUNE_METHODS) == {"magnitude", "lottery", "structured"}
    assert all(n.endswith(("fc1.weight", "fc2.weight")) for n in load_masks(tmp_path))
    with pytest.raises(ConfigError, match="allowed"):
        prune("random", model="tiny:", out=str(tmp_path))
