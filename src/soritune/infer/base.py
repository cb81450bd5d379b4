"""The interface every transcription backend implements."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Protocol

import numpy as np

LANGUAGE_DEFAULT = "ko"
MAX_NEW_TOKENS = 224  # Whisper's sample_len (448 // 2); CTranslate2's cap too


@dataclass
class Transcription:
    text: str
    tokens: list[int] = field(default_factory=list)
    n_tokens: int = 0
    hit_max_tokens: bool = False


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


def batches(n: int, size: int, lengths: list[int] | None = None) -> list[list[int]]:
    """Index batches; with lengths, similar lengths go together (less padding for dynamic backends)."""
    order = sorted(range(n), key=lambda i: -lengths[i]) if lengths else list(range(n))
    return [order[i:i + size] for i in range(0, n, max(1, size))]
