"""Lottery ticket + LoRA on tiny: exact sparsity per round, masks survive the merge, control, protection."""

from __future__ import annotations

import json

import pytest
import torch

from soritune.compress.masks import load_masks
from soritune.compress.prune_lottery import LotteryConfig, run

from .conftest import TRAIN


def _cfg(corpus, out, **kw):
    base = dict(model="tiny:", train=str(corpus / "train.jsonl"), dev=str(corpus / "dev.jsonl"), out=out, rounds=2,
                sparsity=0.5, max_new_tokens=4, train_overrides=dict(TRAIN))
    base.update(kw)
    return LotteryConfig(**base)


@pytest.fixture(scope="module")
def lottery(corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("lth") / "run"
    return run(_cfg(corpus, out)), out


def test_rounds_reach_the_scheduled_sparsity_exactly(lottery):
    r, out = lottery
    pruned = [x for x in r.rounds if x.kind == "pruned"]
    assert [x.round for x in pruned] == [1, 2]
    assert r.rate == pytest.approx(1 - 0.5 ** 0.5)
    n = r.n_prunable
    assert round(pruned[0].mask_sparsity * n) == round((1 - (1 - r.rate)) * n)
    assert pruned[-1].mask_sparsity == 0.5 and r.final_sparsity == 0.5
    assert r.rounds[0].kind == "dense" and r.rounds[0].mask_sparsity == 0.0
    assert r.baseline_cer == r.rounds[0].cer and r.ticket_cer == pruned[-1].cer
    report = json.loads((out / "lottery_report.json").read_text())
    assert len(report["rounds"]) == 4 and report["control_cer"] is not None


def test_masks_survive_the_merge(lottery):
    r, out = lottery
    m2 = load_masks(out / "merged")
    assert m2 is not None and not (out / "round-1" / "base").exists()  # intermediate bases are not kept
    from soritune.models import load

    merged = dict(load(f"hf:{out / 'merged'}").model.named_parameters())
    assert all(bool((merged[n][~m] == 0).all()) for n, m in m2.items())  # zeros written after the merge
    assert sum(int((~m).sum()) for m in m2.values()) == round(0.5 * r.n_prunable)
    # the unmerged pair: base + adapter through models.load re-applies the masks after merging
    bundle = load(str(out / "base"), adapter=str(out / "adapter"))
    params = dict(bundle.model.named_parameters())
    assert all(bool((params[n][~m] == 0).all()) for n, m in m2.items())
    q = "model.decoder.layers.0.self_attn.q_proj.weight"
    base_q = dict(load(f"hf:{out / 'base'}").model.named_parameters())[q]
    assert not torch.equal(params[q], base_q)  # the adapter was merged


def test_surviving_weights_are_rewound_to_pretrained_values(lottery):
    _, out = lottery
    from soritune.models import load

    pre = dict(load(f"hf:{out / 'pretrained'}").model.named_parameters())
    base = dict(load(f"hf:{out / 'base'}").model.named_parameters())
    masks = load_masks(out / "base")
    for n, m in masks.items():
        assert torch.equal(base[n][m], pre[n][m]), n


def test_control_has_the_same_per_matrix_sparsity_but_random_positions(lottery):
    r, out = lottery
    ctrl = [x for x in r.rounds if x.kind == "control"]
    assert len(ctrl) == 1 and ctrl[0].mask_sparsity == 0.5 and r.control_cer == ctrl[0].cer
    assert (out / "control" / "run" / "adapter" / "adapter_config.json").exists()


def test_protect_adapted_keeps_adapter_modules_dense(corpus, tmp_path):
    overrides = dict(TRAIN, max_steps=1, target="qv")
    r = run(_cfg(corpus, tmp_path / "p", rounds=1, control=False, protect_adapted=True, train_overrides=overrides))
    assert r.protected and all(n.endswith(("q_proj.weight", "v_proj.weight")) for n in r.protected)
    masks = load_masks(tmp_path / "p" / "merged")
    assert not set(masks) & set(r.protected)
    assert sum(int((~m).sum()) for m in masks.values()) == round(0.5 * sum(m.numel() for m in masks.values()))


def test_late_rewinding_uses_round_zero_step_k(corpus, tmp_path):
    r = run(_cfg(corpus, tmp_path / "k", rounds=1, control=False, rewind_step=1, dev=None,
                 train_overrides=dict(TRAIN, max_steps=2)))
    out = tmp_path / "k"
    from soritune.models import load

    pre = dict(load(f"hf:{out / 'pretrained'}").model.named_parameters())
    base = dict(load(f"hf:{out / 'base'}").model.named_parameters())
    masks = load_masks(out / "base")
    q = "model.decoder.layers.0.self_attn.q_proj.weight"  # adapted in round 0: W + B_1 A_1 != W
    assert not torch.equal(base[q][masks[q]], pre[q][masks[q]])
    fc = "model.decoder.layers.0.fc1.weight"  # not adapted: rewound to the pre-trained values
    assert torch.equal(base[fc][masks[fc]], pre[fc][masks[fc]])
    assert r.rounds[-1].mask_sparsity == 0.5


def test_config_rejects_rate_and_sparsity_together(corpus):
    from soritune.config import validate
    from soritune.errors import ConfigError

    with pytest.raises(ConfigError, match="not both"):
        validate(LotteryConfig, {"model": "tiny:", "train": "t", "out": "o", "sparsity": 0.5, "rate": 0.2})
    with pytest.raises(ConfigError, match="may not set"):
        validate(LotteryConfig, {"model": "tiny:", "train": "t", "out": "o", "train_overrides": {"out": "x"}})
    cfg = validate(LotteryConfig, {"model": "tiny:", "train": "t", "out": "o", "schedule": [0.2, 0.5]})
    assert cfg.rounds == 2 and cfg.sparsity_after(1) == 0.2 and cfg.per_round_rate() is None


def test_an_adapter_trained_before_serves_as_round_zero(lottery, corpus, tmp_path):
    r, out = lottery
    reused = run(_cfg(corpus, tmp_path / "reuse", control=False, round0_adapter=str(out / "round-0" / "adapter")))
    assert not (tmp_path / "reuse" / "round-0").exists()  # round 0 was not trained again
    first = reused.rounds[0]
    assert first.kind == "dense" and first.run_dir == str(out / "round-0")
    assert first.train_final_loss == r.rounds[0].train_final_loss and first.cer == r.rounds[0].cer
    # same round-0 model, same seed: the pruning rounds select the same masks
    assert reused.rounds[1].mask_sparsity == r.rounds[1].mask_sparsity and reused.final_sparsity == 0.5
    assert load_masks(tmp_path / "reuse" / "merged").keys() == load_masks(out / "merged").keys()


def test_round0_adapter_is_checked(corpus, tmp_path):
    from soritune.config import ConfigError, validate
    from soritune.errors import CompressError

    with pytest.raises(CompressError, match="round0_adapter"):
        run(_cfg(corpus, tmp_path / "x", control=False, round0_adapter=str(tmp_path)))
    with pytest.raises(ConfigError, match="rewind_step"):
        validate(LotteryConfig, {"model": "tiny:", "train": "t.jsonl", "out": "x", "round0_adapter": "a", "rewind_step": 2})


def test_rounds_reduce_to_one_shot_when_no_prunable_weight_is_adapted(corpus, tmp_path):
    two = run(_cfg(corpus, tmp_path / "two", control=False, protect_adapted=True))
    one = run(_cfg(corpus, tmp_path / "one", control=False, protect_adapted=True, rounds=1))
    assert two.details["rounds_reduce_to_one_shot"] and one.details["rounds_reduce_to_one_shot"]
    m1, m2 = load_masks(tmp_path / "one" / "merged"), load_masks(tmp_path / "two" / "merged")
    assert m1.keys() == m2.keys() and all(torch.equal(m1[n], m2[n]) for n in m1)  # the same ticket's mask
    from soritune.models import load

    w1 = dict(load(f"hf:{tmp_path / 'one' / 'merged'}").model.named_parameters())
    w2 = dict(load(f"hf:{tmp_path / 'two' / 'merged'}").model.named_parameters())
    assert all(torch.equal(w1[n], w2[n]) for n in w1)  # and the same final training on it


def test_adapted_prunable_weights_make_the_rounds_matter(lottery):
    r, _ = lottery
    assert r.details["rounds_reduce_to_one_shot"] is False  # q,v carry LoRA and are prunable here
