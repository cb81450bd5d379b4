"""The interface every transcription backend implements."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Protocol

import numpy as np

from soritune.infer.options import MAX_NEW_TOKENS, DecodeOptions  # noqa: F401  (re-exported)

LANGUAGE_DEFAULT = "ko"


@dataclass
class Transcription:
    text: str
    tokens: list[int] = field(default_factory=list)
    n_tokens: int = 0
    hit_max_tokens: bool = False
    avg_logprob: float | None = None  # mean log-probability per generated token (None: not computed)
    no_speech_prob: float | None = None  # the model's <|nospeech|> probability at the first step
    compression_ratio: float | None = None  # gzip ratio of the text (> 2.4: likely a loop)
    temperature: float = 0.0  # the temperature of the attempt kept (fallback)
    language: str | None = None  # the language decoded with (forced or detected)
    segments: list[dict] = field(default_factory=list)  # chunk-local {start, end, text, tokens[, words]}
    next_context: list[int] | None = None  # condition_on_previous_text: the next chunk's prompt (decode.next_context)


class Backend(Protocol):
    name: str

    def transcribe(
        self, audios: list[np.ndarray], *, language: str = LANGUAGE_DEFAULT, task: str = "transcribe",
        batch_size: int = 8, max_new_tokens: int = MAX_NEW_TOKENS,
        progress: Callable[[int], None] | None = None,
    ) -> list[Transcription]:
        """One transcription per input clip (each <= 30 s), greedy, language and task forced."""

    def describe(self) -> dict:
        """Model identity and decoding settings for reports."""


def features(processor, audios: list[np.ndarray], encoder_input: str, return_tensors: str = "np",
             bucket_s: float = 1.0):
    """Log-mel features of a batch: padded to 30 s (as Whisper was trained), or "trimmed" to the
    batch's longest clip rounded up to a whole bucket (1 s) (for models fine-tuned with dynamic length)."""
    from soritune.audio import SAMPLE_RATE
    from soritune.models.encoder import HOP, bucket_frames

    audios = [np.asarray(a, dtype=np.float32) for a in audios]
    kwargs = {}
    if encoder_input == "trimmed":
        kwargs = dict(padding="max_length", max_length=max(bucket_frames(len(a), bucket_s) for a in audios) * HOP)
    return processor.feature_extractor(audios, sampling_rate=SAMPLE_RATE, return_tensors=return_tensors, **kwargs).input_features


def check_encoder_input(value: str) -> str:
    from soritune.errors import SoritunError
    from soritune.models.encoder import ENCODER_INPUTS

    if value not in ENCODER_INPUTS:
        raise SoritunError(f"encoder_input must be one of {', '.join(ENCODER_INPUTS)}, got {value!r}")
    return value


def batches(n: int, size: int, lengths: list[int] | None = None) -> list[list[int]]:
    """Index batches; with lengths, similar lengths go together (less padding for dynamic backends)."""
    order = sorted(range(n), key=lambda i: -lengths[i]) if lengths else list(range(n))
    return [order[i:i + size] for i in range(0, n, max(1, size))]
