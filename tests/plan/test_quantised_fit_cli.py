"""Packed-weight bytes against bitsandbytes; the card fit; the CLI contract."""

from __future__ import annotations

import json

import pytest

from soritune.plan.config import PlanConfig
from soritune.plan.ledger import MemoryLedger


def _wide_config():
    from soritune.models.architectures import whisper_config

    # wider than tiny: (NF4 blocks of 64 weights), still seconds
    return whisper_config("tiny", d_model=64, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
                          decoder_attention_heads=2, encoder_ffn_dim=192, decoder_ffn_dim=192)


def _weight_bytes(model) -> int:
    ledger = MemoryLedger()
    ledger.add_model(model, {})
    return ledger.current


@pytest.mark.parametrize("quantization,bits", [("8bit", 8), ("4bit", 4)])
def test_packed_weights_equal_what_bitsandbytes_allocates(quantization, bits):
    pytest.importorskip("bitsandbytes")
    import torch
    from torch._subclasses.fake_tensor import FakeTensorMode
    from transformers import WhisperForConditionalGeneration

    from soritune.models.quantize import load_quantized
    from soritune.plan.packed import PackedLinear, pack_linears, packed_bytes

    config = _wide_config()
    torch.manual_seed(0)
    real = load_quantized(None, quantization, model=WhisperForConditionalGeneration(config))
    with FakeTensorMode():
        fake = WhisperForConditionalGeneration(config)
        n = pack_linears(fake, bits)
    packed = [m for m in fake.modules() if isinstance(m, PackedLinear)]
    quantised = [m for m in real.modules() if type(m).__module__.startswith("bitsandbytes")]
    assert n == len(packed) == len(quantised) == 3 * 4 + 2 * 2  # q,k,v,out in 3 attentions; fc1, fc2 in 2 layers
    assert _weight_bytes(fake) == _weight_bytes(real)
    # and layer by layer, from the formula alone
    real_lin = real.model.decoder.layers[0].fc1
    layer = _weight_bytes(torch.nn.Sequential(real_lin)) - real_lin.bias.nbytes
    assert layer == packed_bytes(real_lin.out_features, real_lin.in_features, bits)


def test_peft_wraps_packed_layers_and_trains_only_lora():
    from soritune.plan.trace import trace_step

    t = trace_step(PlanConfig(model="tiny:", method="qlora4", precision="bf16-mixed", batch_size=1, audio_s=1,
                              label_tokens=8), fake=True)
    assert 0 < t.trainable_params < t.total_params / 10


def test_gpu_fit_picks_the_largest_batch_that_fits():
    from soritune.plan.fit import fit_batch
    from soritune.plan.planner import plan

    cfg = PlanConfig(model="tiny:", method="lora", precision="fp32", audio_s=2.0, label_tokens=16, chunked_ce=0,
                     cuda_context_gb=0.0, cublas_workspace_gb=0.0)
    one = plan(cfg.model_copy(update={"batch_size": 1})).peak_gb
    two = plan(cfg.model_copy(update={"batch_size": 2})).peak_gb
    capacity = one + 3.5 * (two - one)  # room for about batch 4
    fit = fit_batch(cfg, f"{capacity}GB")
    assert fit.fits and not fit.gradient_checkpointing and fit.batch_size >= 2
    at = plan(cfg.model_copy(update={"batch_size": fit.batch_size})).peak_gb
    nxt = plan(cfg.model_copy(update={"batch_size": fit.batch_size + 1})).peak_gb
    assert at <= capacity < nxt
    assert fit.plan.peak_gb == at and fit.next_peak_gb == nxt


def test_gpu_fit_falls_back_to_checkpointing_and_says_when_nothing_fits():
    from soritune.plan.fit import fit_batch

    cfg = PlanConfig(model="tiny:", method="lora", precision="fp32", audio_s=2.0, label_tokens=16, chunked_ce=0)
    nothing = fit_batch(cfg, "0.1GB")  # less than the CUDA context alone
    assert not nothing.fits and nothing.batch_size == 0 and nothing.plan is None


def test_gpu_names_and_sizes():
    from soritune.errors import ConfigError
    from soritune.plan.fit import gpu_gb

    assert gpu_gb("8GB") == 8 and gpu_gb("rtx3090") == 24 and gpu_gb("a6000") == 48 and gpu_gb("h100") == 80
    with pytest.raises(ConfigError, match="gpu"):
        gpu_gb("toaster")


def _cli(args):
    from typer.testing import CliRunner

    from soritune.cli import app

    return CliRunner().invoke(app, ["plan", *args])


def test_cli_json_contract_batch_size_and_gpu():
    base = ["--model", "tiny:", "--method", "lora", "--audio-s", "1", "--label-tokens", "8", "--json"]
    r = _cli([*base, "--batch-size", "2"])
    assert r.exit_code == 0, r.output
    obj = json.loads(r.stdout)
    assert isinstance(obj["peak_gb"], float) and obj["breakdown"]["weights"] > 0 and obj["assumptions"]
    r = _cli([*base, "--gpu", "8GB", "--max-batch", "3"])  # tiny fits any batch: the search stops at its cap
    assert r.exit_code == 0, r.output
    obj = json.loads(r.stdout)
    assert obj["batch_size"] == 3 and obj["peak_gb"] <= 8 and isinstance(obj["peak_gb"], float)


def test_cli_sweep_writes_table_json_and_plot(tmp_path):
    r = _cli(["--model", "tiny:", "--sweep", "--methods", "full,qlora8", "--batch-sizes", "1,2", "--audio-s", "1",
              "--label-tokens", "8", "--out", str(tmp_path)])
    assert r.exit_code == 0, r.output
    rows = json.loads((tmp_path / "sweep.json").read_text())["rows"]
    assert [(x["method"], x["batch_size"]) for x in rows] == [("full", 1), ("full", 2), ("qlora8", 1), ("qlora8", 2)]
    assert (tmp_path / "sweep.png").stat().st_size > 1000


def test_train_fit_gpu_sets_the_batch_before_a_step(tmp_path):
    import numpy as np

    from soritune.audio import write_wav
    from soritune.config import read_yaml
    from soritune.data.manifest import write_manifest
    from soritune.plan.fit import fit_batch, run_fitted
    from soritune.train.config import TrainConfig

    rng = np.random.default_rng(0)
    rows = [{"id": f"u{i}", "audio": write_wav(tmp_path / f"u{i}.wav", 0.1 * rng.standard_normal(16000).astype("float32")).name,
             "duration": 1.0, "text": text} for i, text in enumerate(["안녕하세요", "감사합니다"])]
    write_manifest(tmp_path / "train.jsonl", rows)
    cfg = TrainConfig(model="tiny:", train=str(tmp_path / "train.jsonl"), out=str(tmp_path / "run"), batch_size=1,
                      max_steps=1, threads=1, eval_at_start=False, max_audio_s=2.0, max_label_tokens=16,
                      mixed_precision="no", fit_gpu="0.6GB")
    events = []
    result = run_fitted(cfg, progress=events.append)
    want = fit_batch(PlanConfig.from_train(cfg), "0.6GB")
    saved = read_yaml(tmp_path / "run" / "config.yaml")
    assert saved["batch_size"] == want.batch_size > 1
    assert next(e for e in events if e["event"] == "fit")["batch_size"] == want.batch_size
    assert result.steps == 1
