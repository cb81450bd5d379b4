"""Transcribe files: decode, chunk long audio at pauses, batch every chunk of every file, reassemble.

A file that cannot be read becomes a failed FileResult with its reason; the others still run.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from soritune.audio import SAMPLE_RATE, chunk_audio, load_audio
from soritune.errors import AudioError
from soritune.infer.base import MAX_NEW_TOKENS, Backend


@dataclass
class FileResult:
    path: str
    ok: bool
    text: str = ""
    segments: list[dict] = field(default_factory=list)
    duration_s: float = 0.0
    error: str | None = None  # reason tag when not ok (missing, empty, not_audio, corrupt, ...)
    detail: str | None = None


@dataclass
class TranscribeSummary:
    files: list[FileResult]
    audio_s: float
    wall_s: float

    @property
    def n_failed(self) -> int:
        return sum(not f.ok for f in self.files)

    @property
    def rtfx(self) -> float:
        return self.audio_s / self.wall_s if self.wall_s > 0 else 0.0


def join_texts(parts: list[str]) -> str:
    """Chunk texts -> one transcript: whitespace collapsed, empty ones dropped, joined by one space."""
    return " ".join(" ".join(p.split()) for p in parts if p and p.strip())


def transcribe_files(
    paths: list[str | Path], backend: Backend, *, language: str = "ko", task: str = "transcribe",
    batch_size: int = 8, max_new_tokens: int = MAX_NEW_TOKENS, chunk_s: float = 30.0,
    on_chunks: Callable[[int], None] | None = None, progress: Callable[[int], None] | None = None,
) -> TranscribeSummary:
    """on_chunks(total) is called once the number of chunks is known; progress(n) after each batch."""
    start = time.perf_counter()
    results: list[FileResult] = []
    chunks: list[tuple[int, float, float, object]] = []  # (file index, start_s, end_s, audio)
    for path in paths:
        try:
            audio = load_audio(path)
        except AudioError as e:
            results.append(FileResult(str(path), ok=False, error=e.reason, detail=e.detail or None))
            continue
        fi = len(results)
        results.append(FileResult(str(path), ok=True, duration_s=len(audio) / SAMPLE_RATE))
        for ch in chunk_audio(audio, max_s=chunk_s):
            chunks.append((fi, ch.start / SAMPLE_RATE, ch.end / SAMPLE_RATE, ch.audio))
    if on_chunks:
        on_chunks(len(chunks))
    outs = backend.transcribe([c[3] for c in chunks], language=language, task=task, batch_size=batch_size,
                              max_new_tokens=max_new_tokens, progress=progress) if chunks else []
    for (fi, s, e, _a), out in zip(chunks, outs):
        results[fi].segments.append({"start": round(s, 3), "end": round(e, 3), "text": out.text})
    for r in results:
        if r.ok:
            r.text = join_texts([s["text"] for s in r.segments])
    audio_s = sum(r.duration_s for r in results)
    return TranscribeSummary(results, audio_s, time.perf_counter() - start)
