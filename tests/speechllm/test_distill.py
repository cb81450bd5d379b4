"""Ultravox-style self-distillation: the teacher reads the transcript where the student hears audio; the
KL is zero when both see the same thing, positive otherwise, and training with it runs and lowers it."""

import pytest
import torch

from .conftest import tiny_config, tone, toy_examples


@pytest.fixture(scope="module")
def model():
    from soritune.speechllm import SpeechLLM

    return SpeechLLM(tiny_config(encoder_input="trimmed"))


def test_kl_is_zero_for_the_same_input_and_positive_for_audio(model):
    from soritune.speechllm.distill import response_logits, self_distillation_loss

    rows = [{"task": "transcribe", "text": "소리 하나", "prompt": "Transcribe.", "response": "소리 하나"},
            {"task": "caption", "text": "", "prompt": "Describe.", "response": "a beep"}]
    with torch.no_grad():
        same = model.build_inputs([], [r["prompt"] for r in rows[:1]], [r["response"] for r in rows[:1]],
                                  audio_text=[rows[0]["text"]])
        logits, targets = model.response_logits(same)
        assert response_logits(logits, targets).shape[0] == len(model.response_ids("소리 하나"))
        zero = self_distillation_loss(model, rows[:1], logits, targets)
        heard = model.build_inputs([tone(1.0, 300), tone(1.0, 900)], [r["prompt"] for r in rows],
                                   [r["response"] for r in rows])
        s_logits, s_targets = model.response_logits(heard)
        kd = self_distillation_loss(model, rows, s_logits, s_targets)
        none = self_distillation_loss(model, rows[1:], s_logits[1:], s_targets[1:])
    assert zero.item() == pytest.approx(0.0, abs=1e-5)
    assert kd.item() > 1e-3 and none.item() == 0.0


def test_stage_with_self_distillation_trains(tmp_path):
    from soritune.speechllm import SpeechLLM, StageTrainConfig
    from soritune.speechllm.train import run_stage

    data = toy_examples(tmp_path, 2)
    model = SpeechLLM(tiny_config(encoder_input="trimmed"))
    cfg = StageTrainConfig(data=str(data), out=str(tmp_path / "s2"), stage=2, steps=6, batch_size=2, lr=3e-3,
                           model=model.config, self_distill_weight=1.0, ce_weight=0.5)
    result = run_stage(cfg, model=model)
    assert result.last_loss < result.first_loss, result.losses


def test_teacher_kl_is_zero_for_the_same_model_and_trains_a_student(tmp_path):
    from soritune.speechllm import SpeechLLM, StageTrainConfig
    from soritune.speechllm.distill import load_teacher, teacher_kl
    from soritune.speechllm.train import run_stage

    data = toy_examples(tmp_path, 2)
    teacher_model = SpeechLLM(tiny_config(encoder_input="trimmed", seed=3))
    teacher_model.save(tmp_path / "teacher")
    rows = [{"prompt": "Transcribe.", "response": "소리 0"}, {"prompt": "Transcribe.", "response": "소리 1"}]
    clips = [tone(1.0, 250), tone(1.0, 400, seed=1)]
    with torch.no_grad():
        teacher = load_teacher(str(tmp_path / "teacher"), teacher_model)
        same = teacher_model.response_logits(teacher_model.build_inputs(clips, ["Transcribe."] * 2,
                                                                        ["소리 0", "소리 1"]))
        assert teacher_kl(teacher, clips, rows, *same, temperature=2.0).item() == pytest.approx(0.0, abs=1e-5)
        student = SpeechLLM(tiny_config(encoder_input="trimmed", llm="random:tiny-llama"))  # same tokenizer
        other = student.response_logits(student.build_inputs(clips, ["Transcribe."] * 2, ["소리 0", "소리 1"]))
        assert teacher_kl(teacher, clips, rows, *other, temperature=2.0).item() > 1e-3
    cfg = StageTrainConfig(data=str(data), out=str(tmp_path / "s1"), stage=1, steps=6, batch_size=2, lr=3e-3,
                           model=student.config, teacher=str(tmp_path / "teacher"), distill_weight=1.0,
                           ce_weight=0.5)
    result = run_stage(cfg, model=student)
    assert result.last_loss < result.first_loss, result.losses


def test_hidden_state_mse_pulls_a_trainable_encoder_to_the_teacher_encoder(tmp_path):
    from soritune.errors import SoritunError
    from soritune.speechllm import SpeechLLM, StageTrainConfig
    from soritune.speechllm.distill import HiddenStateTeacher
    from soritune.speechllm.train import run_stage

    frozen = SpeechLLM(tiny_config(encoder_input="trimmed"))
    with pytest.raises(SoritunError, match="frozen"):
        HiddenStateTeacher("tiny:", frozen, seed=5)
    student = SpeechLLM(tiny_config(encoder_input="trimmed", freeze_encoder=False))
    hidden = HiddenStateTeacher("tiny:", student, seed=5)
    clips = [tone(1.0, 300), tone(2.5, 800, seed=1)]
    opt = torch.optim.Adam(list(student.encoder.module.parameters()) + hidden.parameters(), lr=3e-3)
    losses = []
    for _ in range(8):
        loss = hidden.loss(clips, student.encode_clips(clips))
        loss.backward()
        opt.step()
        opt.zero_grad()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0], losses
    data = toy_examples(tmp_path, 2)
    cfg = StageTrainConfig(data=str(data), out=str(tmp_path / "s1"), stage=1, steps=3, batch_size=2, lr=1e-3,
                           model=student.config, encoder_teacher="tiny:", hidden_mse_weight=1.0)
    result = run_stage(cfg, model=student)
    assert all(torch.isfinite(torch.tensor(result.losses)))
