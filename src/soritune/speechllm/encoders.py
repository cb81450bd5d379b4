"""The speech encoder: any Whisper encoder `soritune.models.load` loads, frozen by default.

Audio longer than what one encoder pass covers is cut explicitly into chunks (at quiet points, by
`soritune.audio.chunk_audio`); each chunk is encoded and projected and the audio tokens of all chunks are
concatenated in order. `covered_s` is what the projector keeps of one 30-s pass (SALMONN's 88 windows of
17 frames cover 29.92 s), so no sample of the input is ever dropped: `EncodedAudio` counts the chunks and
the seconds, and `truncated_s` is always 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from soritune.audio import SAMPLE_RATE, chunk_audio
from soritune.models.encoder import (
    ENCODER_INPUTS,
    HOP,
    MAX_FRAMES,
    bucket_frames,
    encode,
)

FRAME_S = 0.02  # one Whisper encoder frame (after the stride-2 convolution)


@dataclass
class EncoderChunk:
    features: Any  # [frames, d_enc] encoder output of one chunk (frames of real audio only when trimmed)
    audio_s: float


class SpeechEncoder:
    """A Whisper encoder + its feature extractor; `encode_chunks(audio, covered_s)` -> per-chunk outputs."""

    def __init__(self, spec: str, *, encoder_input: str = "padded", seed: int = 0):
        from soritune.models import load

        if encoder_input not in ENCODER_INPUTS:
            raise ValueError(f"encoder_input must be one of {ENCODER_INPUTS}, got {encoder_input!r}")
        loaded = load(spec, seed=seed)
        self.spec, self.encoder_input = spec, encoder_input
        self.module = loaded.model.get_encoder()
        self.feature_extractor = loaded.processor.feature_extractor
        self.d_model = int(loaded.model.config.d_model)
        self.info = {"spec": spec, "params": sum(p.numel() for p in self.module.parameters()),
                     "encoder_input": encoder_input}
        del loaded  # the Whisper decoder is not needed
        self.freeze(True)

    def freeze(self, frozen: bool = True, *, train_lora: bool = False) -> None:
        """Freeze (or unfreeze) the encoder; `train_lora` keeps its LoRA weights trainable either way."""
        for name, p in self.module.named_parameters():
            p.requires_grad_(not frozen or (train_lora and "lora_" in name))
        self.module.train(not frozen)

    def add_lora(self, r: int, alpha: int, dropout: float, targets: list[str]) -> None:
        """LoRA adapters injected into the encoder's `targets` (peft on a plain module, not a PeftModel)."""
        from peft import LoraConfig, inject_adapter_in_model

        inject_adapter_in_model(LoraConfig(r=r, lora_alpha=alpha, lora_dropout=dropout, target_modules=list(targets)),
                                self.module)
        self.info["lora_r"] = r

    def lora_state(self) -> dict:
        return {k: v for k, v in self.module.state_dict().items() if "lora_" in k}

    @property
    def trains(self) -> bool:
        return any(p.requires_grad for p in self.module.parameters())

    def _features(self, pieces: list[np.ndarray]):
        import torch

        if self.encoder_input == "trimmed":  # pad the audio (not the features) to the bucket: same log-mel
            n = max(bucket_frames(len(p)) for p in pieces) * HOP
            pieces = [np.pad(p, (0, n - len(p))) for p in pieces]
            feats = self.feature_extractor(pieces, sampling_rate=SAMPLE_RATE, return_tensors="pt",
                                           padding="longest").input_features[..., : n // HOP]
        else:
            feats = self.feature_extractor(pieces, sampling_rate=SAMPLE_RATE, return_tensors="pt").input_features
        return feats.to(next(self.module.parameters()).device, torch.float32)

    def encode_pieces(self, pieces: list[np.ndarray]) -> list[EncoderChunk]:
        """Encode chunks of <= 30 s each, batched (trimmed: by length bucket); trimmed input keeps each chunk's
        own frames only."""
        import torch

        if not pieces:
            return []
        grad = any(p.requires_grad for p in self.module.parameters())
        # trimmed: one batch per padding bucket, so a clip's features never depend on its batch mates
        groups: dict[int, list[int]] = {}
        for i, piece in enumerate(pieces):
            groups.setdefault(bucket_frames(len(piece)) if self.encoder_input == "trimmed" else 0, []).append(i)
        hidden: list = [None] * len(pieces)
        with torch.set_grad_enabled(grad and torch.is_grad_enabled()):
            for idx in groups.values():
                for i, h in zip(idx, encode(self.module, self._features([pieces[i] for i in idx]))):
                    hidden[i] = h
        out = []
        for i, piece in enumerate(pieces):
            h = hidden[i]
            if self.encoder_input == "trimmed":
                h = h[: max(1, int(np.ceil(len(piece) / SAMPLE_RATE / FRAME_S)))]
            out.append(EncoderChunk(features=h, audio_s=len(piece) / SAMPLE_RATE))
        return out


def split_long(audio: np.ndarray, covered_s: float) -> list[np.ndarray]:
    """Cut audio longer than one encoder pass covers into chunks of at most covered_s (nothing dropped)."""
    covered_s = min(covered_s, MAX_FRAMES * FRAME_S / 2 * 2)
    if len(audio) == 0:
        return [np.zeros(SAMPLE_RATE // 10, dtype=np.float32)]
    search_s = min(5.0, covered_s / 4)
    return [c.audio for c in chunk_audio(np.asarray(audio, dtype=np.float32), max_s=covered_s, search_s=search_s)]
