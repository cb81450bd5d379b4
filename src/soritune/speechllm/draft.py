"""Whisper drafts in the prompt: generative error correction (Whispering-LLaMA, HyPoradise).

With `SpeechLLMConfig.draft = SPEC`, a Whisper model (any spec soritune transcribes with: `bundled:whisper-base`,
`ct2:DIR`, `hf:...`, a fine-tuned run's model) transcribes each clip greedily, as it was trained (30-s input),
and its transcript goes into the user turn after the prompt: the LLM hears the audio tokens *and* reads the
draft, and learns to write the reference. A small LLM does not learn to listen from a few hundred clips on a
CPU (a CTC probe on the demo's 0.49 h spells its training clips only); with a draft the demo's model transcribes:
drafted by the demo's fine-tuned int8 Whisper, 20.9% CER against the draft's 20.7% (it copies the draft); by
stock whisper-base, 64.0% against the draft's 44.0% (README, speech-LLM demo). The draft is part of the model:
generation, evaluation, serving and the efficiency protocol decode it (TTFT includes it); training caches it
per clip (`remember`).

The fastest correct backend is used: CTranslate2 int8 for `bundled:` and `ct2:` specs, torch otherwise.
Clips longer than 30 s are cut at quiet points (`split_long`) and the chunk drafts joined: nothing dropped.
A draft that loops is cut before its loop (`infer.decode.without_loop`, counted in `loops_cut`).
"""

from __future__ import annotations

import hashlib

import numpy as np

DRAFT_LABEL = "Draft transcript (may contain errors):"
MAX_DRAFT_S = 30.0


def with_draft(prompt: str, draft: str | None) -> str:
    """The user turn's text after the audio: the prompt, then the labelled draft (None: the prompt alone)."""
    return prompt if draft is None else f"{prompt}\n{DRAFT_LABEL} {draft}"


class Drafter:
    """Greedy Whisper transcripts of clips; `remember=True` caches them by the clip's samples (training)."""

    def __init__(self, spec: str):
        from soritune.infer import load_backend
        from soritune.models import parse_spec

        backend = "ct2" if parse_spec(spec).kind in ("bundled", "ct2") else "torch"
        compute_type = "int8" if backend == "ct2" else None
        self.backend = load_backend(spec, backend=backend, compute_type=compute_type)
        self.info = {"spec": spec, "backend": backend, "compute_type": compute_type or "float32"}
        self.remember = False
        self.loops_cut = 0  # drafts cut before a loop, for reports
        self._cache: dict[str, str] = {}

    @staticmethod
    def _key(audio: np.ndarray) -> str:
        a = np.ascontiguousarray(audio, dtype=np.float32)
        return hashlib.sha1(a.tobytes()).hexdigest() + f":{a.size}"

    def _text(self, transcription) -> str:
        """The draft of one piece, cut before a token loop (`infer.decode.without_loop`): greedy Whisper on hard
        audio often loops to its 224-token cap (the demo's training drafts read 166.6% CER with their loops kept,
        61.3% cut; the model trained on the cut ones scored better: README, speech-LLM demo)."""
        from soritune.infer.decode import without_loop

        kept = without_loop(transcription.tokens, self.backend.eos)
        if len(kept) == len(transcription.tokens):
            return transcription.text
        self.loops_cut += 1
        return self.backend.processor.tokenizer.decode(kept, skip_special_tokens=True).strip()

    def __call__(self, clips: list[np.ndarray]) -> list[str]:
        from soritune.infer.transcribe import join_texts
        from soritune.speechllm.encoders import split_long

        keys = [self._key(c) for c in clips] if self.remember else [None] * len(clips)
        todo = [i for i, k in enumerate(keys) if k is None or k not in self._cache]
        pieces, owner = [], []
        for i in todo:
            for piece in split_long(clips[i], MAX_DRAFT_S):
                pieces.append(piece)
                owner.append(i)
        texts = [self._text(t) for t in self.backend.transcribe(pieces)] if pieces else []
        fresh = {i: join_texts([t for t, o in zip(texts, owner) if o == i]) for i in todo}
        if self.remember:
            self._cache.update({keys[i]: text for i, text in fresh.items()})
        return [fresh[i] if i in fresh else self._cache[keys[i]] for i in range(len(clips))]


__all__ = ["Drafter", "with_draft", "DRAFT_LABEL"]
