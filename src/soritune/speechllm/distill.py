"""Distillation losses of the speech LLM.

Ultravox-style self-distillation: the teacher is the same LLM (its LoRA switched off) reading the
transcript as text where the student hears the audio; the student's next-token distribution over the
response is pulled to the teacher's with a temperature-scaled KL (T^2 * KL(teacher || student), T = 2 in
Ultravox), added to the cross-entropy (`StageTrainConfig.self_distill_weight`, `ce_weight`). Only
transcription rows have a transcript; a batch without one adds nothing.

Teacher distillation: a trained speech LLM whose LLM has the same tokenizer hears the same audio and
prompt; the student's response distribution is pulled to the teacher's (same KL, `distill_weight`).
Hidden-state MSE: a smaller trainable speech encoder is pulled, frame by frame, to a larger frozen
Whisper encoder's hidden states through a learned linear map (`hidden_mse_weight`); Whisper encoders share
the 20-ms frame, so the frames align one to one.
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


def load_teacher(run_dir: str, student):
    """The teacher speech LLM (frozen, inference mode); its tokenizer must equal the student's."""
    from pathlib import Path

    from soritune.errors import SoritunError
    from soritune.speechllm.model import SpeechLLM

    run = Path(run_dir)
    teacher = SpeechLLM.load(run / "model" if (run / "model").is_dir() else run)
    if teacher.tokenizer.get_vocab() != student.tokenizer.get_vocab():
        raise SoritunError(f"teacher: {run_dir}'s LLM ({teacher.config.llm}) has another tokenizer than the "
                           f"student's ({student.config.llm}); token-level distillation needs the same one")
    for p in teacher.trainable_parameters():
        p.requires_grad_(False)
    teacher.train(False)
    return teacher


def teacher_kl(teacher, clips, rows: list[dict], student_logits, targets, temperature: float):
    """T^2 * KL(teacher || student) over the response tokens, the teacher hearing the same clips and prompts."""
    import torch

    from soritune.errors import SoritunError

    with torch.no_grad():
        t_logits, t_targets = teacher.response_logits(
            teacher.build_inputs(clips, [r["prompt"] for r in rows], [r["response"] for r in rows]))
    s, t = response_logits(student_logits, targets), response_logits(t_logits, t_targets)
    if s.shape[0] != t.shape[0]:
        raise SoritunError("teacher: its chat template tokenises the responses differently from the student's")
    return kl_to_teacher(s, t, temperature)


class HiddenStateTeacher:
    """A frozen Whisper encoder whose hidden states a smaller speech encoder learns to match (MSE through a
    linear map student width -> teacher width, trained with it)."""

    def __init__(self, spec: str, student, seed: int = 0):
        import torch

        from soritune.errors import SoritunError
        from soritune.speechllm.encoders import SpeechEncoder

        if not student.encoder.trains:
            raise SoritunError("encoder_teacher: the student's speech encoder is frozen; set freeze_encoder: false "
                               "(or encoder_lora_r > 0 in stage 2) to distil into it")
        self.encoder = SpeechEncoder(spec, encoder_input=student.encoder.encoder_input, seed=seed)
        torch.manual_seed(seed)
        self.map = torch.nn.Linear(student.encoder.d_model, self.encoder.d_model)

    def parameters(self):
        return list(self.map.parameters())

    def loss(self, clips, student_encoded: list[list]):
        """Mean squared error between mapped student frames and teacher frames, over every chunk."""
        import torch

        with torch.no_grad():
            target = [[c.features for c in chunks] for chunks in self.encoder_clips(clips, student_encoded)]
        diffs = []
        for s_chunks, t_chunks in zip(student_encoded, target):
            for s, t in zip(s_chunks, t_chunks):
                n = min(s.features.shape[0], t.shape[0])
                diffs.append((self.map(s.features[:n]) - t[:n]).pow(2).mean())
        return torch.stack(diffs).mean()

    def encoder_clips(self, clips, student_encoded):
        """The teacher's outputs on the student's own chunks (same cut points)."""
        pieces = [c for chunks, clip in zip(student_encoded, clips) for c in _pieces(clip, chunks)]
        out, k = [], 0
        encoded = self.encoder.encode_pieces(pieces)
        for chunks in student_encoded:
            out.append(encoded[k: k + len(chunks)])
            k += len(chunks)
        return out


def _pieces(clip, chunks):
    """The audio of each chunk in order (chunks carry their length in seconds)."""
    from soritune.audio import SAMPLE_RATE

    out, start = [], 0
    for c in chunks:
        n = int(round(c.audio_s * SAMPLE_RATE))
        out.append(clip[start: start + n])
        start += n
    return out
