"""Word alignment on the torch backend: dynamic time warping over cross-attention (Whisper's method).

`align(...)` answers what CTranslate2's `Whisper.align` answers (per item: `alignments`, pairs of
(text index, time index), and `text_token_probs`), so faster-whisper's word-timing rules run
unchanged on both backends (see infer/decode.py). The heads are the model's `alignment_heads`
(generation config) when it names them, else every head of the upper half of the decoder layers
(what Whisper itself does for models without a head list). The DTW and the median filter are
transformers' own (`transformers.models.whisper.generation_whisper`).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Alignment:
    alignments: list[tuple[int, int]]
    text_token_probs: list[float]


def alignment_heads(whisper) -> list[tuple[int, int]]:
    heads = getattr(whisper.generation_config, "alignment_heads", None)
    if heads:
        return [(int(layer), int(head)) for layer, head in heads]
    layers, n_heads = whisper.config.decoder_layers, whisper.config.decoder_attention_heads
    return [(layer, head) for layer in range(layers // 2, layers) for head in range(n_heads)]


def _cross_attentions(backend, encoded, ids):
    """Cross-attention weights [layers][1, heads, tokens, frames] of one teacher-forced pass (eager attention)."""
    whisper = backend.whisper
    previous = whisper.config._attn_implementation
    if previous != "eager":
        whisper.set_attn_implementation("eager")
    try:
        out = backend._forward(encoded, ids, output_attentions=True)
    finally:
        if previous != "eager":
            whisper.set_attn_implementation(previous)
    return out.cross_attentions, out.logits


def align(backend, encoded, start_sequence: list[int], text_tokens: list[list[int]], num_frames,
          median_filter_width: int = 7) -> list[Alignment]:
    import numpy as np
    import torch
    from transformers.models.whisper.generation_whisper import (
        _dynamic_time_warping,
        _median_filter,
    )

    tok = backend.processor.tokenizer
    no_ts, eot = tok.convert_tokens_to_ids("<|notimestamps|>"), tok.eos_token_id
    heads = alignment_heads(backend.whisper)
    frames_list = num_frames if isinstance(num_frames, (list, tuple)) else [num_frames] * len(text_tokens)
    results = []
    for i, (tokens, n_frames) in enumerate(zip(text_tokens, frames_list)):
        prefix = list(start_sequence) + [no_ts]
        ids = torch.tensor([prefix + list(tokens) + [eot]], dtype=torch.long, device=encoded.device)
        attentions, logits = _cross_attentions(backend, encoded[i:i + 1], ids)
        probs = logits[0].float().softmax(-1)
        token_probs = [float(probs[len(prefix) - 1 + k, t]) for k, t in enumerate(tokens)]
        n_audio = max(1, min(int(n_frames) // 2, attentions[0].shape[-1]))
        weights = torch.stack([attentions[layer][0, head, :, :n_audio] for layer, head in heads]).float()
        std, mean = torch.std_mean(weights, dim=-2, keepdim=True, unbiased=False)
        weights = _median_filter((weights - mean) / (std + 1e-10), median_filter_width)
        matrix = weights.mean(dim=0)[len(prefix) - 1:-1]  # rows predicting each text token and <|endoftext|>
        text_idx, time_idx = _dynamic_time_warping(-matrix.double().cpu().numpy())
        results.append(Alignment(list(zip(np.asarray(text_idx).tolist(), np.asarray(time_idx).tolist())),
                                 token_probs))
    return results
