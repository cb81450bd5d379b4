"""The Whisper encoder on inputs shorter than 30 s ("trimmed" encoder input).

Whisper was trained on log-mel input padded to 30 s (3000 frames); Hugging Face's WhisperEncoder
refuses anything else. The architecture itself does not need it: convolutions run on any length and
the sinusoid-initialised positional embedding can be sliced to the input. A clip of 4 s then costs
the encoder 400 frames instead of 3000 (self-attention: 56x less). Used by training
(`dynamic_length`) and, for models fine-tuned that way, by inference (`encoder_input="trimmed"`).
"""

from __future__ import annotations

import math
from typing import Literal, get_args

from soritune.audio import SAMPLE_RATE

HOP = 160  # samples per log-mel frame
MAX_FRAMES = 3000  # 30 s
EncoderInput = Literal["padded", "trimmed"]
ENCODER_INPUTS = get_args(EncoderInput)
ENCODER_INPUT_HELP = ("padded (30-s input, as Whisper was trained) | trimmed (each batch's own length, rounded up to a "
                      "second: for models fine-tuned by soritune, several times faster on short clips)")


def bucket_frames(n_samples: int, bucket_s: float = 1.0, max_frames: int = MAX_FRAMES) -> int:
    """Frames for a clip of n_samples rounded up to a whole bucket (even, at most max_frames)."""
    step = max(2, int(round(bucket_s * SAMPLE_RATE / HOP)))
    step += step % 2
    frames = math.ceil(max(1, n_samples) / HOP / step) * step
    return min(max_frames, frames)


def encode(encoder, input_features):
    """WhisperEncoder forward for input_features [B, mels, T] with T even and T <= 2 * max positions.

    For T = 3000 it computes what `WhisperEncoder.forward` computes (tested)."""
    import torch
    from torch.nn import functional as F

    n_pos = (input_features.shape[-1] + 1) // 2
    if input_features.shape[-1] % 2 or n_pos > encoder.embed_positions.num_embeddings:
        raise ValueError(f"encoder input must have an even number of frames <= "
                         f"{2 * encoder.embed_positions.num_embeddings}, got {input_features.shape[-1]}")
    dtype = encoder.conv1.weight.dtype
    x = F.gelu(encoder.conv1(input_features.to(dtype)))
    x = F.gelu(encoder.conv2(x)).permute(0, 2, 1)
    x = x + encoder.embed_positions.weight[:n_pos].to(x.dtype)
    x = F.dropout(x, p=encoder.dropout, training=encoder.training)
    for layer in encoder.layers:
        if encoder.training and encoder.layerdrop > 0.0 and torch.rand([]) < encoder.layerdrop:
            continue
        x = layer(x, None)
    return encoder.layer_norm(x)
