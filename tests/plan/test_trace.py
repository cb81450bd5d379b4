"""The planner's trace against the same step on real tensors, and every setup it accepts."""

from __future__ import annotations

import itertools

import pytest

from soritune.plan.config import METHODS, OPTIMIZERS, PRECISIONS, PlanConfig
from soritune.plan.trace import trace_step

SMALL = {"model": "tiny:", "batch_size": 2, "audio_s": 2.0, "label_tokens": 16, "chunked_ce": 0, "gpu_foreach": False}


@pytest.mark.parametrize("method,precision,ckpt", [("full", "fp32", False), ("lora", "bf16-mixed", False),
                                                   ("dora", "fp32", True), ("qlora8", "fp32", False)])
def test_fake_trace_equals_the_real_step_byte_for_byte(method, precision, ckpt):
    cfg = PlanConfig(**SMALL, method=method, precision=precision, gradient_checkpointing=ckpt)
    fake, real = trace_step(cfg, fake=True), trace_step(cfg, fake=False)
    assert fake.ledger.peak_bytes == real.ledger.peak_bytes
    assert fake.ledger.peak_phase == real.ledger.peak_phase
    assert fake.ledger.phase_peaks_bytes == real.ledger.phase_peaks_bytes
    if method != "qlora8":  # bitsandbytes keeps its input outside autograd's saved tensors: same bytes, other label
        assert fake.ledger.breakdown_bytes == real.ledger.breakdown_bytes
    assert fake.trainable_params == real.trainable_params > 0


def test_steady_state_holds_optimizer_state_through_forward_and_backward():
    r = trace_step(PlanConfig(**SMALL, method="lora", precision="fp32", grad_accum=2), fake=True).ledger
    assert r.peak_phase.startswith("step 2")
    assert r.breakdown_bytes["optimizer"] > 0 and r.breakdown_bytes["gradients"] > 0
    assert r.phase_peaks_bytes["step 2 forward"] > r.phase_peaks_bytes["step 1 optimizer"] > r.breakdown_bytes["weights"]


def _pairwise():
    """Every value of each axis meets every value of every other axis (method x precision in full);
    the full product (160 traces) is the slow test below."""
    return [(method, precision, OPTIMIZERS[(p + m) % 4], bool((p // 2 + m) % 2))
            for m, method in enumerate(METHODS) for p, precision in enumerate(PRECISIONS)]


@pytest.mark.parametrize("method,precision,optimizer,ckpt", _pairwise())
def test_every_method_and_precision_traces(method, precision, optimizer, ckpt):
    cfg = PlanConfig(**{**SMALL, "batch_size": 1, "label_tokens": 8}, method=method, precision=precision,
                     optimizer=optimizer, gradient_checkpointing=ckpt)
    r = trace_step(cfg, fake=True).ledger
    assert r.peak_bytes > r.breakdown_bytes["weights"] > 0
    assert sum(r.breakdown_bytes.values()) == r.peak_bytes
    key = "optimizer_paged" if optimizer.startswith("paged") else "optimizer"
    assert r.phase_peaks_bytes.get("step 2 forward", 0) > 0 and key in r.breakdown_bytes


@pytest.mark.slow
@pytest.mark.parametrize("method,precision,optimizer,ckpt",
                         list(itertools.product(METHODS, PRECISIONS, OPTIMIZERS, (False, True))))
def test_every_combination_traces(method, precision, optimizer, ckpt):
    cfg = PlanConfig(**{**SMALL, "batch_size": 1, "label_tokens": 8}, method=method, precision=precision,
                     optimizer=optimizer, gradient_checkpointing=ckpt)
    r = trace_step(cfg, fake=True).ledger
    assert r.peak_bytes > r.breakdown_bytes["weights"] > 0


def test_pairwise_covers_every_pair():
    rows = _pairwise()
    for a, b in itertools.combinations(range(4), 2):
        vals = [{r[a] for r in rows}, {r[b] for r in rows}]
        assert {(r[a], r[b]) for r in rows} == set(itertools.product(*vals))


def test_eager_attention_keeps_its_attention_matrices():
    base = dict(SMALL, method="lora", precision="fp32", audio_s=8.0)
    sdpa = trace_step(PlanConfig(**base), fake=True).ledger
    eager = trace_step(PlanConfig(**base, attn_implementation="eager"), fake=True).ledger
    heads_l2 = 2 * 2 * 400 * 400 * 4  # batch x heads x L x L fp32, one encoder layer's probabilities
    assert eager.breakdown_bytes["activations"] - sdpa.breakdown_bytes["activations"] >= heads_l2
