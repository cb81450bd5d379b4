"""The distillation student and the distillation loss.

Student (as distil-whisper and whisper-large-v3-turbo do): the teacher's whole encoder and K
decoder layers copied from maximally spaced teacher layers, `linspace(0, L-1, K)` truncated to
integers with the last student layer always the teacher's last (distil-whisper's
`create_student_model.py` mapping), plus the teacher's embeddings, final layer norm and output
projection (tied to the token embedding).

Loss per target token (the train loop sums over tokens and divides by their count):
    alpha * CE(student, pseudo-label) + kl_weight * T^2 * KL(teacher_T || student_T)
    [+ mse_weight * mean over mapped layers of ||h_student - h_teacher||^2 / d_model]
with logits divided by the temperature T inside the KL (Hinton et al.; T = 2 by default).
"""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.nn import functional as F

from soritune.errors import CompressError

IGNORE = -100


def layer_map(n_teacher: int, k: int) -> list[int]:
    """Teacher decoder layer copied into each of the k student layers."""
    import numpy as np

    if not 1 <= k <= n_teacher:
        raise CompressError(f"decoder_layers: {k} must be between 1 and the teacher's {n_teacher}")
    mapping = [int(x) for x in np.linspace(0, n_teacher - 1, k, dtype=int)]
    mapping[-1] = n_teacher - 1
    return mapping


def make_student(teacher, k: int):
    """(student, mapping): a WhisperForConditionalGeneration with k decoder layers, teacher-initialised."""
    import re

    from transformers import WhisperForConditionalGeneration

    from soritune.compress.structures import fix_alignment_heads

    mapping = layer_map(teacher.config.decoder_layers, k)
    cfg = copy.deepcopy(teacher.config)
    cfg.decoder_layers = k
    student = WhisperForConditionalGeneration(cfg).to(next(teacher.parameters()).dtype)
    state = {}
    for key, value in teacher.state_dict().items():
        m = re.match(r"model\.decoder\.layers\.(\d+)\.(.*)", key)
        if not m:
            state[key] = value.clone()
        elif int(m.group(1)) in mapping:
            for s, t in enumerate(mapping):
                if t == int(m.group(1)):
                    state[f"model.decoder.layers.{s}.{m.group(2)}"] = value.clone()
    student.load_state_dict(state, strict=True)
    student.generation_config = copy.deepcopy(teacher.generation_config)
    fix_alignment_heads(student)
    return student.eval(), mapping


def kl_sum(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """Sum over rows of KL(softmax(teacher/T) || softmax(student/T)) (rows = tokens)."""
    log_s = F.log_softmax(student_logits.float() / temperature, dim=-1)
    log_t = F.log_softmax(teacher_logits.float() / temperature, dim=-1)
    return F.kl_div(log_s, log_t, log_target=True, reduction="sum")


class DistillLoss(nn.Module):
    """forward(batch) -> summed distillation loss over the batch's label tokens.

    `model` is the student (what the train loop optimises and evaluates); the teacher is frozen.
    With a frozen student encoder (a copy of the teacher's) the encoder runs once for both, and
    `cache` (an EncoderCache) keeps its outputs across epochs (the teacher is always in eval mode)."""

    def __init__(self, student: nn.Module, teacher: nn.Module, *, mapping: list[int], alpha: float = 0.8,
                 kl_weight: float = 1.0, temperature: float = 2.0, mse_weight: float = 0.0,
                 dynamic_length: bool = True, cache=None):
        super().__init__()
        self.model = student
        self.teacher = teacher.eval().requires_grad_(False)
        self.mapping = mapping
        self.alpha, self.kl_weight, self.temperature, self.mse_weight = alpha, kl_weight, temperature, mse_weight
        self.dynamic_length = dynamic_length
        self.shared_encoder = not any(p.requires_grad for p in student.model.encoder.parameters())
        self.cache = cache if self.shared_encoder else None  # soritune.train.efficiency.EncoderCache
        self.parts: dict[str, float] = {}  # last batch's summed components, for inspection

    def train(self, mode: bool = True):
        super().train(mode)
        self.teacher.eval()  # the teacher never drops out
        return self

    def _encode(self, encoder, feats, grad: bool):
        from soritune.train.efficiency import encode

        fn = encode if self.dynamic_length else (lambda enc, x: enc(x).last_hidden_state)
        if grad:
            return fn(encoder, feats)
        with torch.no_grad():
            return fn(encoder, feats)

    def teacher_encoding(self, input_features, ids):
        """The (frozen) teacher encoder's output, from the cache across epochs when there is one."""
        if self.cache is not None and ids is not None:
            hit = self.cache.get(ids, input_features.shape[-1], input_features.device)
            if hit is not None:
                return hit
        out = self._encode(self.teacher.model.encoder, input_features, grad=False)
        if self.cache is not None and ids is not None:
            self.cache.put(ids, input_features.shape[-1], out)
        return out

    def forward(self, input_features, decoder_input_ids, labels, ids=None):
        t_enc = self.teacher_encoding(input_features, ids)
        s_enc = t_enc if self.shared_encoder else self._encode(self.model.model.encoder, input_features, grad=True)
        want_hidden = self.mse_weight > 0
        with torch.no_grad():
            t_out = self.teacher.model.decoder(input_ids=decoder_input_ids, encoder_hidden_states=t_enc,
                                               use_cache=False, output_hidden_states=want_hidden)
        s_out = self.model.model.decoder(input_ids=decoder_input_ids, encoder_hidden_states=s_enc, use_cache=False,
                                         output_hidden_states=want_hidden)
        keep = labels.reshape(-1) != IGNORE
        d = s_out.last_hidden_state.shape[-1]
        s_h = s_out.last_hidden_state.reshape(-1, d)[keep]
        t_h = t_out.last_hidden_state.reshape(-1, d)[keep]
        s_logits = self.model.proj_out(s_h)
        with torch.no_grad():
            t_logits = self.teacher.proj_out(t_h)
        ce = F.cross_entropy(s_logits.float(), labels.reshape(-1)[keep], reduction="sum")
        kl = kl_sum(s_logits, t_logits, self.temperature) * self.temperature ** 2
        loss = self.alpha * ce + self.kl_weight * kl
        mse = torch.zeros((), device=loss.device)
        if want_hidden:  # hidden_states[i + 1] is the output of decoder layer i
            for s, t in enumerate(self.mapping):
                hs = s_out.hidden_states[s + 1].reshape(-1, d)[keep]
                ht = t_out.hidden_states[t + 1].reshape(-1, d)[keep]
                mse = mse + F.mse_loss(hs.float(), ht.float(), reduction="sum") / d
            mse = mse / len(self.mapping)
            loss = loss + self.mse_weight * mse
        self.parts = {"ce": float(ce.detach()), "kl": float(kl.detach()), "mse": float(mse.detach()),
                      "tokens": int(keep.sum())}
        return loss
