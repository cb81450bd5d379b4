"""Distillation losses of the speech LLM.

Ultravox-style self-distillation: the teacher is the same LLM (its LoRA switched off) reading the
transcript as text where the student hears the audio; the student's next-token distribution over the
response is pulled to the teacher's with a temperature-scaled KL (T^2 * KL(teacher || student), T = 2 in
Ultravox), added to the cross-entropy (`StageTrainConfig.self_distill_weight`, `ce_weight`). Only
transcription rows have a transcript; a batch without one adds nothing.
"""

from __future__ import annotations

from contextlib import nullcontext


def response_logits(logits, labels):
    """[n_response_tokens, vocab]: the logits that predict each labelled token, row by row in order."""
    from soritune.speechllm.model import IGNORE

    mask = labels[:, 1:] != IGNORE
    return logits[:, :-1][mask]


def kl_to_teacher(student_logits, teacher_logits, temperature: float):
    """T^2 * KL(teacher || student) per token, averaged over tokens."""
    import torch.nn.functional as F

    t = temperature
    log_s = F.log_softmax(student_logits.float() / t, dim=-1)
    log_t = F.log_softmax(teacher_logits.float() / t, dim=-1)
    return F.kl_div(log_s, log_t, log_target=True, reduction="batchmean") * t * t


def self_distillation_loss(model, rows: list[dict], student_logits, labels, temperature: float = 2.0):
    """The KL term for the transcription rows of a batch (0 when there are none)."""
    import torch

    keep = [i for i, r in enumerate(rows) if r["task"] == "transcribe" and r.get("text", "").strip()]
    if not keep:
        return student_logits.new_zeros(())
    teacher = model.build_inputs([], [rows[i]["prompt"] for i in keep], [rows[i]["response"] for i in keep],
                                 audio_text=[rows[i]["text"] for i in keep])
    off = model.llm.disable_adapter() if hasattr(model.llm, "disable_adapter") else nullcontext()
    with torch.no_grad(), off:
        t_logits = model.llm(inputs_embeds=teacher["inputs_embeds"], attention_mask=teacher["attention_mask"],
                             use_cache=False).logits
    idx = torch.tensor(keep, device=labels.device)
    s = response_logits(student_logits[idx], labels[idx])
    t = response_logits(t_logits, teacher["labels"])
    return kl_to_teacher(s, t, temperature)
