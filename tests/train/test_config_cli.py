"""TrainConfig validation, presets, precedence, and the `soritune train` command end to end."""

from __future__ import annotations

import json

import pytest
import yaml

from soritune.errors import ConfigError
from soritune.train.config import TrainConfig, load_train_config
from soritune.train.presets import list_presets, load_preset

REQUIRED = {"model": "tiny:", "train": "t.jsonl", "out": "o"}


@pytest.mark.parametrize("field,value,needle", [
    ("method", "lorax", "method: invalid value 'lorax'; allowed: 'full', 'lora', 'qlora8', 'qlora4' or 'dora'"),
    ("target_side", "middle", "target_side: invalid value 'middle'"),
    ("target", "q_proj,zz_proj", "unknown module(s) ['zz_proj']"),
    ("optimizer", "sgd", "optimizer: invalid value 'sgd'"),
    ("batch_size", 0, "batch_size: Input should be greater than or equal to 1"),
    ("bogus", 1, "bogus: unknown field (known fields:"),
])
def test_bad_fields_name_field_and_allowed_values(field, value, needle):
    with pytest.raises(ConfigError) as e:
        load_train_config(fields={**REQUIRED, field: value})
    assert needle in str(e.value)


def test_target_presets_and_names():
    assert TrainConfig(**REQUIRED).target_modules() == ("q_proj", "v_proj")
    assert TrainConfig(**REQUIRED, target="attn").target_modules() == ("q_proj", "k_proj", "v_proj", "out_proj")
    assert TrainConfig(**REQUIRED, target="q_proj, fc1").target_modules() == ("q_proj", "fc1")
    with pytest.raises(ConfigError, match="cache_encoder"):
        load_train_config(fields={**REQUIRED, "cache_encoder": True})


def test_precedence_preset_file_flags_set(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text(yaml.safe_dump({"lora_r": 8, "batch_size": 2, "lr": 0.5}))
    cfg = load_train_config(f, ["batch_size=5"], "paper-lecture-8bit", {**REQUIRED, "lr": 0.25})
    assert cfg.method == "qlora8" and cfg.lora_alpha == 64  # preset
    assert cfg.lora_r == 8  # file over preset
    assert cfg.lr == 0.25  # flag over file
    assert cfg.batch_size == 5  # --set over everything


def test_every_published_preset_is_valid():
    names = list_presets()
    for want in ("paper-lecture-8bit", "paper-ondevice-full", "paper-ondevice-lora", "paper-ondevice-lora8",
                 "paper-ondevice-lora4", "blog-kspon-fullft"):
        assert want in names
    for name in names:
        cfg = load_train_config(preset=name, fields={"train": "t.jsonl", "out": "o"})
        assert cfg.model.startswith("hf:openai/whisper-")
    lecture = load_preset("paper-lecture-8bit")
    assert (lecture["lora_r"], lecture["lora_alpha"], lecture["batch_size"], lecture["grad_accum"]) == (32, 64, 16, 4)
    with pytest.raises(ConfigError, match="known presets"):
        load_preset("nope")


def _cli(args):
    from typer.testing import CliRunner

    from soritune.cli.app import app

    return CliRunner().invoke(app, args)


def test_cli_trains_saves_resolved_config_and_summary(corpus, tmp_path):
    out = tmp_path / "run"
    res = _cli(["train", "--model", "tiny:", "--train", str(corpus / "train.jsonl"), "--dev", str(corpus / "dev.jsonl"),
                "--out", str(out), "--method", "lora", "--lora-r", "4", "--lora-alpha", "8", "--target", "attn",
                "--target-side", "decoder", "--batch-size", "4", "--max-steps", "2", "--lr", "0.01", "--threads", "1",
                "--set", "eval_max_new_tokens=4", "--set", "eval_at_start=false", "--preset", "paper-lecture-8bit",
                "--method", "lora"])
    assert res.exit_code == 0, res.output
    saved = yaml.safe_load((out / "config.yaml").read_text())
    assert saved["lora_r"] == 4 and saved["target"] == "attn" and saved["lr"] == 0.01 and saved["method"] == "lora"
    assert saved["lora_dropout"] == 0.1  # from the preset
    summary = json.loads((out / "summary.json").read_text())
    assert summary["steps"] == 2 and summary["best_dev_cer"] is not None
    assert (out / "adapter" / "adapter_config.json").exists()


def test_cli_rejects_bad_method_with_exit_code_2(tmp_path):
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-c", "from soritune.cli import main; main()", "train", "--model", "tiny:",
                           "--train", "x.jsonl", "--out", str(tmp_path / "o"), "--method", "nope"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "method: invalid value 'nope'" in proc.stderr and "Traceback" not in proc.stderr
