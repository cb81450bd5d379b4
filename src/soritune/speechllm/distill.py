"""Distillation losses of the speech LLM.

Ultravox-style self-distillation: the teacher is the same LLM (its LoRA switched off) reading the
transcript as text where the student hears the audio; the student's next-token distribution over the
response is pulled to the teacher's with a temperature-scaled KL (T^2 * KL(teacher || student), T = 2 in
Ultravox), added to the cross-entropy (`StageTrainConfig.self_distill_weight`, `ce_weight`). Only
transcription rows have a transcript; a batch without one adds nothing.
"""

from __future__ import annotations

from contextlib import nullcontext


def response_logits(logits, targets):
    """[n_response_tokens, vocab]: the logits that predict each labelled token, row by row in order
    (`logits` and `targets` aligned, as SpeechLLM.response_logits returns them)."""
    from soritune.speechllm.model import IGNORE

    return logits[targets != IGNORE]


def kl_to_teacher(student_logits, teacher_logits, temperature: float):
    """T^2 * KL(teacher || student) per token, averaged over tokens."""
    import torch.nn.functional as F

    t = temperature
    log_s = F.log_softmax(student_logits.float() / t, dim=-1)
    log_t = F.log_softmax(teacher_logits.float() / t, dim=-1)
    return F.kl_div(log_s, log_t, log_target=True, reduction="batchmean") * t * t


def self_distillation_loss(model, rows: list[dict], student_logits, targets, temperature: float = 2.0):
    """The KL term for the transcription rows of a batch (0 when there are none)."""
    import torch

    keep = [i for i, r in enumerate(rows) if r["task"] == "transcribe" and r.get("text", "").strip()]
    if not keep:
        return student_logits.new_zeros(())
    teacher = model.build_inputs([], [rows[i]["prompt"] for i in keep], [rows[i]["response"] for i in keep],
                                 audio_text=[rows[i]["text"] for i in keep])
    off = model.llm.disable_adapter() if hasattr(model.llm, "disable_adapter") else nullcontext()
    with torch.no_grad(), off:
        t_logits, t_targets = model.response_logits(teacher)
    idx = torch.tensor(keep, device=targets.device)
    s = response_logits(student_logits[idx], targets[idx])
    t = response_logits(t_logits, t_targets)
    return kl_to_teacher(s, t, temperature)
