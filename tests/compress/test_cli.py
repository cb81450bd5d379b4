"""The compress verbs through the CLI: prune (and prune sweep), export, distill; errors as one line."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from soritune.cli import app

runner = CliRunner()


def test_prune_magnitude_and_structured(tmp_path):
    res = runner.invoke(app, ["prune", "-m", "tiny:", "--method", "magnitude", "--sparsity", "0.3", "--scope", "layer",
                              "--out", str(tmp_path / "m")])
    assert res.exit_code == 0, res.output
    report = json.loads((tmp_path / "m" / "prune_report.json").read_text())
    assert abs(report["mask_sparsity"] - 0.3) < 1e-3 and report["details"]["scope"] == "layer"  # round() per matrix
    assert "no sparse kernel" in res.output
    res = runner.invoke(app, ["prune", "-m", "tiny:", "--method", "structured", "--target", "layers", "--fraction", "0.5",
                              "--out", str(tmp_path / "s"), "--set", "measure_speed=false", "--set", "max_new_tokens=2"])
    assert res.exit_code == 0, res.output
    assert json.loads((tmp_path / "s" / "prune_report.json").read_text())["details"]["config_after"]["decoder_layers"] == 1


def test_prune_sweep_subcommand(tmp_path, corpus):
    res = runner.invoke(app, ["prune", "sweep", "-m", "tiny:", "--sparsity", "0.5", "--eval-manifest",
                              str(corpus / "dev.jsonl"), "--out", str(tmp_path), "--set", "max_new_tokens=2",
                              "--set", "repeats=1"])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "sweep.png").exists() and "| 50% |" in res.output


def test_export_ct2(tmp_path):
    res = runner.invoke(app, ["export", "-m", "tiny:", "--to", "ct2", "--quantization", "int8", "--out", str(tmp_path),
                              "--no-speed", "--parity-n", "1", "--set", "max_new_tokens=2"])
    assert res.exit_code == 0, res.output
    report = json.loads((tmp_path / "export_report.json").read_text())
    assert report["quantization"] == "int8" and report["parity"]["n_utts"] == 1


def test_user_errors_are_one_line_with_exit_code_2(tmp_path):
    import pytest

    from soritune.cli import main

    for argv in (["prune", "-m", "tiny:", "--method", "bogus", "--out", str(tmp_path)],
                 ["export", "-m", "tiny:", "--to", "hf", "--quantization", "int8", "--out", str(tmp_path)],
                 ["prune", "--method", "magnitude", "--out", str(tmp_path)]):
        with pytest.raises(SystemExit) as e:
            main(argv)
        assert e.value.code == 2, argv


def test_distill_help_teaches():
    res = runner.invoke(app, ["distill", "--help"])
    assert res.exit_code == 0 and "--decoder-layers" in res.output and "Example" in res.output


def test_lottery_sweep_through_the_cli(tmp_path, corpus):
    from .conftest import TRAIN

    args = ["prune", "sweep", "-m", "tiny:", "--method", "lottery", "--sparsity", "0.3,0.6", "--train",
            str(corpus / "train.jsonl"), "--eval-manifest", str(corpus / "dev.jsonl"), "--max-steps", "1",
            "--out", str(tmp_path), "--set", "max_new_tokens=2", "--set", "repeats=1"]
    for k in ("batch_size", "threads", "warmup_steps", "lora_r", "lora_alpha"):
        args += ["--set", f"train_overrides.{k}={TRAIN[k]}"]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    data = json.loads((tmp_path / "sweep.json").read_text())
    assert [p["mask_sparsity"] for p in data["points"]] == [0.0, 0.3, 0.6]
    rounds = json.loads((tmp_path / "lottery" / "lottery_report.json").read_text())["rounds"]
    assert [r["target_sparsity"] for r in rounds] == [0.0, 0.3, 0.6] and all(r["cer"] is None for r in rounds)
