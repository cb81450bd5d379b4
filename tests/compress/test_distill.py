"""Distillation: layer mapping, student initialisation, the loss, and a tiny end-to-end run."""

from __future__ import annotations

import json

import pytest
import torch

from soritune.compress.distill_student import (
    DistillLoss,
    kl_sum,
    layer_map,
    make_student,
)
from soritune.errors import CompressError

from .conftest import TRAIN


@pytest.mark.parametrize("n,k,expected", [
    (32, 2, [0, 31]),            # distil-large-v2/v3
    (32, 4, [0, 10, 20, 31]),    # large-v3-turbo's 4 layers
    (6, 2, [0, 5]),              # whisper-base -> 2
    (6, 3, [0, 2, 5]),
    (4, 4, [0, 1, 2, 3]),
    (6, 1, [5]),
])
def test_layer_map_is_maximally_spaced(n, k, expected):
    assert layer_map(n, k) == expected


def test_layer_map_rejects_impossible_sizes():
    for k in (0, 7):
        with pytest.raises(CompressError, match="decoder_layers"):
            layer_map(6, k)


def test_student_copies_encoder_and_mapped_decoder_layers(tiny_model):
    teacher, _ = tiny_model
    student, mapping = make_student(teacher, 1)
    assert mapping == [1] and student.config.decoder_layers == 1 and len(student.model.decoder.layers) == 1
    t_sd, s_sd = teacher.state_dict(), student.state_dict()
    for key, value in s_sd.items():
        src = key.replace("model.decoder.layers.0.", "model.decoder.layers.1.")
        assert torch.equal(value, t_sd[src]), key
    assert student.proj_out.weight.data_ptr() == student.model.decoder.embed_tokens.weight.data_ptr()  # tied
    assert sum(p.numel() for p in student.parameters()) < sum(p.numel() for p in teacher.parameters())


def _batch(processor):
    torch.manual_seed(0)
    feats = torch.randn(2, processor.feature_extractor.feature_size, 200)
    dec = torch.tensor([[50258, 50264, 50359, 50363, 400, 500], [50258, 50264, 50359, 50363, 401, 50257]])
    labels = torch.tensor([[50264, 50359, 50363, 400, 500, 50257], [50264, 50359, 50363, 401, 50257, -100]])
    return {"input_features": feats, "decoder_input_ids": dec, "labels": labels}


def test_a_full_copy_has_zero_kl_and_mse(tiny_model):
    teacher, proc = tiny_model
    student, mapping = make_student(teacher, teacher.config.decoder_layers)
    student.model.encoder.requires_grad_(False)
    loss = DistillLoss(student, teacher, mapping=mapping, alpha=0.0, kl_weight=1.0, mse_weight=1.0).eval()
    value = loss(**_batch(proc))
    assert loss.parts["tokens"] == 11
    assert abs(loss.parts["kl"]) < 1e-4 and loss.parts["mse"] < 1e-8 and abs(float(value)) < 1e-4


def test_loss_combines_ce_and_scaled_kl(tiny_model):
    teacher, proc = tiny_model
    student, mapping = make_student(teacher, 1)
    student.model.encoder.requires_grad_(False)
    loss = DistillLoss(student, teacher, mapping=mapping, alpha=0.8, kl_weight=1.0, temperature=2.0).eval()
    value = loss(**_batch(proc))
    assert loss.parts["kl"] > 0 and loss.parts["ce"] > 0
    assert float(value) == pytest.approx(0.8 * loss.parts["ce"] + loss.parts["kl"], rel=1e-5)
    value.backward()
    assert student.model.decoder.layers[0].fc1.weight.grad is not None
    assert all(p.grad is None for p in teacher.parameters())


def test_kl_sum_matches_the_definition():
    s, t = torch.randn(3, 7), torch.randn(3, 7)
    p = torch.softmax(t / 2, -1)
    expected = (p * (torch.log_softmax(t / 2, -1) - torch.log_softmax(s / 2, -1))).sum()
    assert float(kl_sum(s, t, 2.0)) == pytest.approx(float(expected), rel=1e-5)


def test_distill_run_end_to_end(tmp_path, corpus):
    from soritune.compress.distill import DistillConfig, run

    cfg = DistillConfig(teacher="tiny:", train=str(corpus / "train.jsonl"), dev=str(corpus / "dev.jsonl"),
                        out=tmp_path / "d", decoder_layers=1, filter_threshold=1e9, max_steps=2, batch_size=3,
                        max_new_tokens=4, repeats=1, lr=1e-3,
                        train_overrides={k: TRAIN[k] for k in ("threads", "warmup_steps", "eval_max_new_tokens")})
    r = run(cfg)
    assert r.layer_map == [1] and r.steps == 2 and r.n_pseudo_kept + r.n_pseudo_rejected == r.n_train_in == 6
    assert r.student_params < r.teacher_params and r.speedup_rtfx is not None
    assert r.teacher_cer is not None and r.student_cer is not None
    from soritune.models import load

    student = load(f"hf:{r.student_dir}").model
    assert student.config.decoder_layers == 1
    rows = [json.loads(x) for x in (tmp_path / "d" / "pseudo" / "train.jsonl").read_text().splitlines()]
    assert all("text_ref" in row for row in rows)
    assert json.loads((tmp_path / "d" / "distill_report.json").read_text())["layer_map"] == [1]


def test_pseudo_label_filter_rejects_with_reasons(tmp_path, corpus):
    from soritune.compress.distill import DistillConfig, run

    # a random tiny teacher never transcribes correctly: a 0 threshold rejects everything, with reasons
    with pytest.raises(CompressError, match="no pseudo-label passed"):
        run(DistillConfig(teacher="tiny:", train=str(corpus / "train.jsonl"), out=tmp_path / "d", filter_threshold=0.0,
                          max_new_tokens=3, decoder_layers=1))
    rejected = [json.loads(x) for x in (tmp_path / "d" / "pseudo" / "rejected.jsonl").read_text().splitlines()]
    assert len(rejected) == 6 and all(r["reason"] in ("cer_above_threshold", "empty_pseudo_label") for r in rejected)


def test_frozen_encoder_outputs_are_cached_across_epochs(tiny_model):
    from soritune.train.efficiency import EncoderCache

    teacher, proc = tiny_model
    student, mapping = make_student(teacher, 1)
    student.model.encoder.requires_grad_(False)
    loss = DistillLoss(student, teacher, mapping=mapping, cache=EncoderCache()).eval()
    batch = _batch(proc)
    first = float(loss(**batch, ids=["a", "b"]))
    assert loss.cache.hits == 0 and loss.cache.misses == 2
    second = float(loss(**batch, ids=["a", "b"]))
    assert loss.cache.hits == 2 and second == pytest.approx(first, rel=1e-6)
    student.model.encoder.requires_grad_(True)  # a trainable encoder is never cached
    assert DistillLoss(student, teacher, mapping=mapping, cache=EncoderCache()).cache is None
