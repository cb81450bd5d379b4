"""Checkpoints: `kill -9` mid-run, `--resume`, and the final weights equal an uninterrupted run's."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest
import torch
from safetensors.torch import load_file

from soritune.errors import ConfigError
from soritune.train import run
from soritune.train.checkpoint import list_checkpoints
from soritune.train.metrics_log import read_metrics

KILLER = textwrap.dedent("""
    import json, os, signal, sys
    import torch
    torch.set_num_threads(1)
    from soritune.train import TrainConfig, run
    cfg = TrainConfig(**json.loads(sys.argv[1]))
    def hook(ev):
        if ev["event"] == "step" and ev["step"] == int(sys.argv[2]):
            os.kill(os.getpid(), signal.SIGKILL)
    run(cfg, progress=hook)
""")


def _weights(run_dir):
    return load_file(str(run_dir / "adapter" / "adapter_model.safetensors"))


@pytest.mark.parametrize("grad_accum", [1, 2])
def test_resume_after_kill_gives_identical_weights(make_cfg, tmp_path, grad_accum):
    common = dict(max_steps=8, save_every=2, keep_last=2, lora_dropout=0.1, grad_accum=grad_accum, batch_size=3)
    ref_cfg = make_cfg(out=str(tmp_path / "uninterrupted"), **common)
    ref = run(ref_cfg)
    killed_cfg = make_cfg(out=str(tmp_path / "killed"), **common)
    proc = subprocess.run([sys.executable, "-c", KILLER, killed_cfg.model_dump_json(), "5"], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == -9, proc.stderr[-2000:]
    assert [s for s, _ in list_checkpoints(killed_cfg.run_dir())] == [2, 4]
    assert not (killed_cfg.run_dir() / "adapter").exists()
    res = run(killed_cfg.model_copy(update={"resume": True}))
    assert res.resumed_from_step == 4 and res.steps == 8
    a, b = _weights(ref_cfg.run_dir()), _weights(killed_cfg.run_dir())
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    ref_losses = [r["loss"] for r in read_metrics(ref_cfg.run_dir() / "metrics.jsonl") if "loss" in r]
    got_losses = [r["loss"] for r in read_metrics(killed_cfg.run_dir() / "metrics.jsonl") if "loss" in r]
    assert got_losses == ref_losses  # the killed run's step-5 row was dropped and replayed
    assert abs(res.final_loss - ref.final_loss) < 1e-12


def test_retention_keeps_last_k_and_best(make_cfg, corpus):
    cfg = make_cfg(dev=str(corpus / "dev.jsonl"), eval_every=1, max_steps=6, keep_last=2, eval_max_new_tokens=4)
    res = run(cfg)
    kept = [s for s, _ in list_checkpoints(cfg.run_dir())]
    assert kept[-2:] == [5, 6]
    assert res.best_step in kept and len(kept) == (2 if res.best_step in (5, 6) else 3)


def test_resume_refuses_a_different_setup(make_cfg):
    cfg = make_cfg(max_steps=2, save_every=1)
    run(cfg)
    with pytest.raises(ConfigError, match="lora_r"):
        run(cfg.model_copy(update={"resume": True, "lora_r": 8}))


def test_out_with_a_run_needs_resume_or_overwrite(make_cfg):
    cfg = make_cfg(max_steps=1)
    run(cfg)
    with pytest.raises(ConfigError, match="--resume"):
        run(cfg)
    res = run(cfg.model_copy(update={"overwrite": True}))
    assert res.steps == 1
    saved = json.loads((cfg.run_dir() / "summary.json").read_text())
    assert saved["steps"] == 1
