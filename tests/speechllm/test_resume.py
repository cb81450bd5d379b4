"""Checkpoint and exact resume of a speech-LLM stage (soritune's checkpoint format): a run stopped after
a checkpoint and resumed ends with the same losses and weights as one that never stopped."""

import json

import pytest
import torch

from .conftest import tiny_config, toy_examples


class Stop(Exception):
    pass


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return toy_examples(tmp_path_factory.mktemp("res"), 5, 0.8)


def test_resumed_stage_equals_an_uninterrupted_one(data, tmp_path):
    stage = 2  # projector + LoRA: both kinds of trainable tensors
    from soritune.speechllm import SpeechLLM, StageTrainConfig
    from soritune.speechllm.train import named_trainable, run_stage
    from soritune.train.checkpoint import list_checkpoints

    def cfg(out, **kw):
        return StageTrainConfig(data=str(data), out=str(out), stage=stage, steps=4, batch_size=2, lr=3e-3,
                                model=tiny_config(encoder_input="trimmed"), save_every=2, keep_last=2, **kw)

    full = run_stage(cfg(tmp_path / "full"), model=SpeechLLM(tiny_config(encoder_input="trimmed")))
    full_weights = {k: v.detach().clone() for k, v in named_trainable(SpeechLLM.load(full.model_dir)).items()
                    if k in {"projector." + n for n, _ in SpeechLLM.load(full.model_dir).projector.named_parameters()}}

    def stop_at_3(ev):
        if ev["step"] == 3:
            raise Stop

    with pytest.raises(Stop):
        run_stage(cfg(tmp_path / "cut"), model=SpeechLLM(tiny_config(encoder_input="trimmed")), progress=stop_at_3)
    assert [s for s, _ in list_checkpoints(tmp_path / "cut")] == [2]
    resumed = run_stage(cfg(tmp_path / "cut", resume=True))
    assert resumed.losses == pytest.approx(full.losses, rel=1e-5)
    again = named_trainable(SpeechLLM.load(resumed.model_dir))
    for k, v in full_weights.items():
        assert torch.allclose(v, again[k], rtol=1e-4, atol=5e-5), (k, float((v - again[k]).abs().max()))  # summation order across threads
    rows = (tmp_path / "cut" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(r)["step"] for r in rows] == [1, 2, 3, 4]
