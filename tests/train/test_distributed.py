"""2 CPU processes (accelerate launch, gloo) with batch B give the loss curve of 1 process with 2B."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from safetensors.torch import load_file

from soritune.train.metrics_log import read_metrics


def _args(corpus, out, batch_size):
    return ["--model", "tiny:", "--train", str(corpus / "train.jsonl"), "--out", str(out), "--batch-size", str(batch_size),
            "--max-steps", "4", "--lr", "0.01", "--threads", "1", "--set", "lora_dropout=0", "--set", "log_every=1",
            "--set", "warmup_steps=0"]


@pytest.mark.slow  # ~40-80 s on 2 shared cores: two interpreter start-ups under torchrun
def test_two_processes_match_one_with_double_batch(corpus, tmp_path):
    accelerate = Path(sys.executable).with_name("accelerate")
    if not accelerate.exists():
        accelerate = shutil.which("accelerate")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    one = subprocess.run([sys.executable, "-m", "soritune.cli.train", *_args(corpus, tmp_path / "one", 4)],
                         capture_output=True, text=True, timeout=200, env=env)
    assert one.returncode == 0, one.stderr[-3000:]
    two = subprocess.run([str(accelerate), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
                          "--mixed_precision", "no", "--dynamo_backend", "no", "-m", "soritune.cli.train",
                          *_args(corpus, tmp_path / "two", 2)], capture_output=True, text=True, timeout=200, env=env)
    assert two.returncode == 0, two.stderr[-3000:]
    summary = (tmp_path / "two" / "summary.json").read_text()
    assert '"world_size": 2' in summary
    l1 = [r["loss"] for r in read_metrics(tmp_path / "one" / "metrics.jsonl") if "loss" in r]
    l2 = [r["loss"] for r in read_metrics(tmp_path / "two" / "metrics.jsonl") if "loss" in r]
    assert len(l1) == len(l2) == 4
    assert all(abs(a - b) < 1e-4 for a, b in zip(l1, l2)), (l1, l2)
    w1 = load_file(str(tmp_path / "one" / "adapter" / "adapter_model.safetensors"))
    w2 = load_file(str(tmp_path / "two" / "adapter" / "adapter_model.safetensors"))
    assert max(float((w1[k] - w2[k]).abs().max()) for k in w1) < 1e-4
