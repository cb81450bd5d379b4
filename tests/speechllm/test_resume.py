"""Checkpoint and exact resume of a speech-LLM stage (soritune's checkpoint format): a run stopped after
a checkpoint and resumed ends with the same losses and weights as one that never stopped."""

import json

import pytest
import torch

from .conftest import tiny_config, tone, toy_examples


class Stop(Exception):
    pass


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return toy_examples(tmp_path_factory.mktemp("res"), 5, 0.8)


def test_resumed_stage_equals_an_uninterrupted_one(data, tmp_path):
    stage = 2  # projector + LoRA: both kinds of trainable tensors
    from soritune.speechllm import SpeechLLM, StageTrainConfig
    from soritune.speechllm.train import run_stage
    from soritune.train.checkpoint import list_checkpoints

    def cfg(out, **kw):
        return StageTrainConfig(data=str(data), out=str(out), stage=stage, steps=4, batch_size=2, lr=3e-3,
                                model=tiny_config(encoder_input="trimmed"), save_every=2, keep_last=2, **kw)

    full = run_stage(cfg(tmp_path / "full"), model=SpeechLLM(tiny_config(encoder_input="trimmed")))

    def stop_at_3(ev):
        if ev["step"] == 3:
            raise Stop

    with pytest.raises(Stop):
        run_stage(cfg(tmp_path / "cut"), model=SpeechLLM(tiny_config(encoder_input="trimmed")), progress=stop_at_3)
    assert [s for s, _ in list_checkpoints(tmp_path / "cut")] == [2]
    seen = []
    resumed = run_stage(cfg(tmp_path / "cut", resume=True), progress=lambda ev: seen.append(ev["step"]))
    assert seen == [3, 4]  # it went on from the checkpoint, not from the start
    assert resumed.losses == pytest.approx(full.losses, rel=1e-5)
    clip = [tone(0.8, 400)]
    models = [SpeechLLM.load(full.model_dir), SpeechLLM.load(resumed.model_dir)]
    for m in models:
        m.train(False)
    with torch.no_grad():  # same weights up to float summation order (Adam magnifies it on near-zero grads)
        a, b = (m.loss(clip, ["Transcribe."], ["말 1"]) for m in models)
    assert a.item() == pytest.approx(b.item(), rel=1e-4)
    rows = (tmp_path / "cut" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(r)["step"] for r in rows] == [1, 2, 3, 4]
