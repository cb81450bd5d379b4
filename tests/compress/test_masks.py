"""Masks: exact-count selection, what is prunable, random controls, save/load."""

from __future__ import annotations

import pytest
import torch

from soritune.compress.masks import (
    load_masks,
    lowest,
    magnitude_scores,
    mask_sparsity,
    prunable_params,
    random_masks,
    save_masks,
    select_masks,
)
from soritune.errors import CompressError


def test_lowest_marks_exactly_k_even_with_ties():
    s = torch.tensor([3.0, 1.0, 1.0, 1.0, 2.0, 0.5])
    m = lowest(s, 3)
    assert int(m.sum()) == 3
    assert m.tolist() == [False, True, True, False, False, True]  # 0.5 then the first two of the tied 1.0s
    assert int(lowest(torch.zeros(10), 4).sum()) == 4
    assert int(lowest(s, 0).sum()) == 0 and int(lowest(s, 6).sum()) == 6


@pytest.mark.parametrize("scope", ["global", "layer"])
@pytest.mark.parametrize("sparsity", [0.1, 0.37, 0.5, 0.9])
def test_sparsity_is_exact(tiny, scope, sparsity):
    params = prunable_params(tiny.model)
    masks = select_masks(magnitude_scores(params), sparsity, scope)
    n = sum(m.numel() for m in masks.values())
    if scope == "global":
        assert sum(int((~m).sum()) for m in masks.values()) == round(sparsity * n)
    else:
        for name, m in masks.items():
            assert int((~m).sum()) == round(sparsity * m.numel()), name
    # the pruned entries are the smallest: every pruned |w| <= every kept |w| (global scope)
    if scope == "global":
        pruned = torch.cat([params[k].detach().abs()[~m] for k, m in masks.items()])
        kept = torch.cat([params[k].detach().abs()[m] for k, m in masks.items()])
        assert pruned.max() <= kept.min()


def test_tied_embedding_and_non_linear_weights_are_never_prunable(tiny):
    names = set(prunable_params(tiny.model))
    assert names and all(n.endswith(".weight") for n in names)
    assert not any("embed" in n or "proj_out" in n or "conv" in n or "layer_norm" in n for n in names)
    assert len(names) == 2 * 6 + 2 * 10  # encoder: q,k,v,out,fc1,fc2 x2 layers; decoder: + cross-attention x2
    dec_only = prunable_params(tiny.model, ["fc1"], "decoder")
    assert set(dec_only) == {f"model.decoder.layers.{i}.fc1.weight" for i in range(2)}
    with pytest.raises(CompressError, match="unknown"):
        prunable_params(tiny.model, ["embed_tokens"])


def test_already_pruned_weights_stay_pruned(tiny):
    params = prunable_params(tiny.model)
    first = select_masks(magnitude_scores(params), 0.3)
    # rank by a different score: previously pruned entries must remain pruned
    noisy = {n: p.detach().abs() + torch.rand_like(p) for n, p in params.items()}
    second = select_masks({n: torch.where(first[n], s, -1.0) for n, s in noisy.items()}, 0.5)
    assert all(bool((~second[n])[~first[n]].all()) for n in first)
    assert mask_sparsity(second) == pytest.approx(0.5, abs=1e-9)


def test_random_control_keeps_per_matrix_counts_but_not_positions(tiny):
    params = prunable_params(tiny.model)
    masks = select_masks(magnitude_scores(params), 0.5)
    ctrl = random_masks(params, 0.0, seed=1, like=masks)
    for n in masks:
        assert int(ctrl[n].sum()) == int(masks[n].sum())
    assert any(not torch.equal(ctrl[n], masks[n]) for n in masks)


def test_masks_round_trip(tmp_path, tiny):
    masks = select_masks(magnitude_scores(prunable_params(tiny.model)), 0.25)
    save_masks(tmp_path, masks, {"method": "test"})
    back = load_masks(tmp_path)
    assert set(back) == set(masks) and all(torch.equal(back[n], masks[n]) for n in masks)
    assert load_masks(tmp_path / "nowhere") is None


def test_bad_sparsity_is_an_error(tiny):
    with pytest.raises(CompressError, match="sparsity"):
        select_masks(magnitude_scores(prunable_params(tiny.model)), 1.5)
