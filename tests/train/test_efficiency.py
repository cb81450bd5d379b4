"""Efficiency pieces against the standard computation: encoder on trimmed input, chunked CE, frozen
encoder (no_grad + cache), and WhisperLoss against the HF model's own loss."""

from __future__ import annotations

import pytest
import torch

from soritune.train.efficiency import EncoderCache, WhisperLoss, ce_sum, encode


@pytest.fixture()
def model():
    from soritune.models import load

    torch.manual_seed(0)
    return load("tiny:")


def _batch(processor, frames=3000, n=2, width=7, seed=0):
    g = torch.Generator().manual_seed(seed)
    feats = torch.randn(n, 80, frames, generator=g)
    dec = torch.randint(0, 50000, (n, width), generator=g)
    dec[:, 0] = 50258
    labels = torch.cat([dec[:, 1:], torch.full((n, 1), 50257)], dim=1)
    labels[1, -2:] = -100
    return feats, dec, labels


def test_encode_equals_hf_encoder_at_30s(model):
    m, p = model
    m.eval()
    feats, _, _ = _batch(p)
    with torch.no_grad():
        ref = m.model.encoder(feats).last_hidden_state
        got = encode(m.model.encoder, feats)
    assert torch.allclose(ref, got, atol=1e-5)


def test_encode_trimmed_input(model):
    m, p = model
    feats, _, _ = _batch(p, frames=400)
    out = encode(m.model.encoder, feats)
    assert out.shape == (2, 200, m.config.d_model)
    with pytest.raises(ValueError, match="even"):
        encode(m.model.encoder, feats[..., :399])
    with pytest.raises(ValueError):
        encode(m.model.encoder, torch.randn(1, 80, 3200))


def test_whisper_loss_equals_hf_loss(model):
    m, p = model
    m.eval()
    feats, dec, labels = _batch(p)
    n_tok = int((labels != -100).sum())
    with torch.no_grad():
        ref = m(input_features=feats, decoder_input_ids=dec, labels=labels).loss * n_tok
        got = WhisperLoss(m, dynamic_length=False)(feats, dec, labels)
        got_dyn = WhisperLoss(m, dynamic_length=True)(feats, dec, labels)  # 3000 frames: same path
    assert torch.allclose(ref, got, rtol=1e-5)
    assert torch.allclose(ref, got_dyn, rtol=1e-5)


def test_chunked_ce_matches_full_in_value_and_gradient(model):
    m, _ = model
    torch.manual_seed(1)
    hidden = torch.randn(3, 11, m.config.d_model, requires_grad=True)
    labels = torch.randint(0, 50000, (3, 11))
    labels[2, 5:] = -100
    full = ce_sum(m.proj_out, hidden, labels, 0)
    (g_full,) = torch.autograd.grad(full, hidden)
    chunked = ce_sum(m.proj_out, hidden, labels, 4)
    (g_chunk,) = torch.autograd.grad(chunked, hidden)
    assert torch.allclose(full, chunked, rtol=1e-5)
    assert torch.allclose(g_full, g_chunk, atol=1e-6)


def test_frozen_encoder_runs_without_grad_and_caches(model):
    from peft import LoraConfig, get_peft_model

    from soritune.train.adapters import target_regex

    m, p = model
    pm = get_peft_model(m, LoraConfig(r=4, lora_alpha=8, target_modules=target_regex(("q_proj", "v_proj"), "decoder")))
    feats, dec, labels = _batch(p, frames=400)
    plain = WhisperLoss(pm, dynamic_length=True)
    assert plain.frozen_encoder
    cache = EncoderCache()
    cached = WhisperLoss(pm, dynamic_length=True, cache=cache)
    ids = ["a", "b"]
    l0 = plain(feats, dec, labels)
    l1 = cached(feats, dec, labels, ids=ids)
    l2 = cached(feats, dec, labels, ids=ids)
    assert cache.misses == 2 and cache.hits == 2
    assert torch.allclose(l0, l1) and torch.allclose(l1, l2)
    l2.backward()
    assert all(p_.grad is not None for n, p_ in pm.named_parameters() if p_.requires_grad)
    enc = pm.get_base_model().model.encoder
    assert all(p_.grad is None for p_ in enc.parameters())
