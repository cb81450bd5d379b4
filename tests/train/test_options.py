"""Loop options that must not change the numbers (gradient checkpointing, data workers, micro-batch
split) and ones that must simply work on CPU (bf16 autocast, 8-bit AdamW, TensorBoard, CLI resume)."""

from __future__ import annotations

import pytest
from safetensors.torch import load_file

from soritune.train import run
from soritune.train.metrics_log import read_metrics


def _losses(run_dir):
    return [r["loss"] for r in read_metrics(run_dir / "metrics.jsonl") if "loss" in r]


def test_gradient_checkpointing_and_workers_leave_the_numbers_alone(make_cfg, tmp_path):
    common = dict(max_steps=3, lora_dropout=0.0)
    ref = run(make_cfg(out=str(tmp_path / "ref"), **common))
    ckpt = run(make_cfg(out=str(tmp_path / "gc"), gradient_checkpointing=True, **common))
    workers = run(make_cfg(out=str(tmp_path / "w"), num_workers=1, **common))
    assert _losses(tmp_path / "ref") == pytest.approx(_losses(tmp_path / "gc"), rel=1e-6)
    assert _losses(tmp_path / "ref") == _losses(tmp_path / "w")
    assert ref.final_loss == pytest.approx(ckpt.final_loss, rel=1e-6) and ref.final_loss == workers.final_loss


def test_padded_inputs_and_ungrouped_batches_train(make_cfg):
    res = run(make_cfg(dynamic_length=False, group_by_length=False, max_steps=3))
    assert res.status == "completed" and not res.dynamic_length


@pytest.mark.parametrize("extra", [dict(mixed_precision="bf16"), dict(optimizer="adamw8bit"),
                                   dict(optimizer="paged_adamw8bit"), dict(schedule="cosine", warmup_steps=2)])
def test_cpu_options_train(make_cfg, extra):
    cfg = make_cfg(max_steps=6, **extra)
    res = run(cfg)
    losses = _losses(cfg.run_dir())
    assert res.status == "completed" and losses[-1] < losses[0]
    if "mixed_precision" in extra:
        assert res.mixed_precision == "bf16"


def test_tensorboard_logs(make_cfg):
    pytest.importorskip("tensorboard")
    cfg = make_cfg(max_steps=2, tensorboard=True)
    run(cfg)
    assert list((cfg.run_dir() / "tb").glob("events.out.tfevents.*"))


def test_cli_resume_picks_up_the_saved_config(corpus, tmp_path):
    from typer.testing import CliRunner

    from soritune.cli.app import app

    out = tmp_path / "run"
    base = ["train", "--model", "tiny:", "--train", str(corpus / "train.jsonl"), "--out", str(out), "--batch-size", "4",
            "--lr", "0.01", "--threads", "1", "--set", "save_every=1"]
    r1 = CliRunner().invoke(app, [*base, "--max-steps", "2"])
    assert r1.exit_code == 0, r1.output
    first = load_file(str(out / "adapter" / "adapter_model.safetensors"))
    r2 = CliRunner().invoke(app, ["train", "--out", str(out), "--resume", "--max-steps", "4"])
    assert r2.exit_code == 0, r2.output
    summary = (out / "summary.json").read_text()
    assert '"resumed_from_step": 2' in summary and '"steps": 4' in summary
    second = load_file(str(out / "adapter" / "adapter_model.safetensors"))
    assert any((first[k] != second[k]).any() for k in first)
