"""Training compute savers beyond the standard recipe; each optional and measured.

- `encode`: the Whisper encoder on mel input of any even length <= 3000 frames, with the
  positional embedding sliced to the input (HF's WhisperEncoder insists on exactly 3000 frames).
  For 3000 frames it computes what `WhisperEncoder.forward` computes.
- frozen encoder: when no encoder parameter trains, it runs under no_grad (no stored
  activations), and `EncoderCache` can keep its outputs across epochs (keyed by id and length).
- `ce_sum`: cross-entropy summed over the non-padding tokens only; with `chunk_tokens` it
  projects to the 51,865-way vocabulary a chunk at a time and recomputes each chunk's logits in
  backward, so the full [tokens x vocab] logits (and their gradient) never exist at once.
- `WhisperLoss`: the module the loop (and DDP) wraps; forward returns the summed token loss.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from soritune.models.encoder import encode

IGNORE = -100


def whisper_of(model) -> nn.Module:
    """The WhisperForConditionalGeneration inside a PEFT wrapper (adapter layers stay active)."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def _ce_chunk(proj: nn.Module, hidden: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(proj(hidden).float(), labels, reduction="sum")


def ce_sum(proj: nn.Module, hidden: torch.Tensor, labels: torch.Tensor, chunk_tokens: int = 0) -> torch.Tensor:
    """Sum of token cross-entropies over labels != -100 (hidden [B, L, d], labels [B, L])."""
    keep = labels.reshape(-1) != IGNORE
    h = hidden.reshape(-1, hidden.shape[-1])[keep]
    y = labels.reshape(-1)[keep]
    if chunk_tokens <= 0 or h.shape[0] <= chunk_tokens:
        return _ce_chunk(proj, h, y)
    from torch.utils.checkpoint import checkpoint

    total = hidden.new_zeros((), dtype=torch.float32)
    for s in range(0, h.shape[0], chunk_tokens):
        total = total + checkpoint(_ce_chunk, proj, h[s:s + chunk_tokens], y[s:s + chunk_tokens], use_reentrant=False)
    return total


class EncoderCache:
    """Encoder outputs by (utterance id, frames), kept on the CPU in the model's dtype."""

    def __init__(self):
        self.store: dict[tuple[str, int], torch.Tensor] = {}
        self.hits = self.misses = 0

    def get(self, ids: list[str], frames: int, device) -> torch.Tensor | None:
        found = [self.store.get((i, frames)) for i in ids]
        if any(f is None for f in found):
            self.misses += len(ids)
            return None
        self.hits += len(ids)
        return torch.stack(found).to(device)

    def put(self, ids: list[str], frames: int, states: torch.Tensor) -> None:
        cpu = states.detach().to("cpu")
        for i, s in zip(ids, cpu):
            self.store[(i, frames)] = s.clone()

    @property
    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in self.store.values())


def encoder_trainable(model) -> bool:
    return any(p.requires_grad for p in whisper_of(model).model.encoder.parameters())


class WhisperLoss(nn.Module):
    """forward(batch) -> summed cross-entropy over the batch's label tokens."""

    def __init__(self, model: nn.Module, *, dynamic_length: bool = True, chunk_tokens: int = 0,
                 cache: EncoderCache | None = None):
        super().__init__()
        self.model = model
        self.dynamic_length = dynamic_length
        self.chunk_tokens = chunk_tokens
        self.cache = cache
        self.frozen_encoder = not encoder_trainable(model)

    def run_encoder(self, encoder, feats: torch.Tensor, ids: list[str] | None) -> torch.Tensor:
        fn = encode if self.dynamic_length else (lambda enc, x: enc(x).last_hidden_state)
        if not self.frozen_encoder:
            return fn(encoder, feats)
        if self.cache is not None and ids is not None:
            hit = self.cache.get(ids, feats.shape[-1], feats.device)
            if hit is not None:
                return hit
        with torch.no_grad():
            if self.cache is not None:  # cached outputs must not depend on dropout
                was = encoder.training
                encoder.eval()
                out = fn(encoder, feats)
                encoder.train(was)
                if ids is not None:
                    self.cache.put(ids, feats.shape[-1], out)
            else:
                out = fn(encoder, feats)
        return out

    def forward(self, input_features, decoder_input_ids, labels, ids=None):
        whisper = whisper_of(self.model)
        enc = self.run_encoder(whisper.model.encoder, input_features, ids)
        hidden = whisper.model.decoder(input_ids=decoder_input_ids, encoder_hidden_states=enc,
                                       use_cache=False).last_hidden_state
        return ce_sum(whisper.proj_out, hidden, labels, self.chunk_tokens)
