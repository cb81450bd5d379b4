"""Response formats of `/v1/audio/transcriptions`: json, text, srt, vtt, verbose_json.

Pure functions (segments in, text or dict out), so the `transcribe` CLI can reuse `to_srt` / `to_vtt`.
A segment is a dict `{start, end, text}` in seconds (extra keys are ignored); soritune makes one
segment per <= 30 s chunk of the audio. Segments with empty text get no subtitle cue (an empty cue
is invalid SRT); cues are numbered without gaps.
"""

from __future__ import annotations

import zlib
from typing import Any

from soritune.infer.formats import clock, cue_text, to_srt, to_vtt  # noqa: F401  (re-exported)
from soritune.infer.transcribe import join_texts  # noqa: F401  (re-exported)

FORMATS = ("json", "text", "srt", "vtt", "verbose_json")
MEDIA_TYPES = {
    "json": "application/json",
    "verbose_json": "application/json",
    "text": "text/plain; charset=utf-8",
    "srt": "text/plain; charset=utf-8",  # what the hosted API sends; the openai client returns a str
    "vtt": "text/plain; charset=utf-8",
}


def to_text(text: str) -> str:
    """Plain transcript, newline-terminated (as the hosted API's `text` format)."""
    return text.strip() + "\n"


def compression_ratio(text: str) -> float:
    """Whisper's repetition signal: UTF-8 bytes / zlib-compressed bytes (> 2.4 suggests a loop)."""
    data = text.encode("utf-8")
    return round(len(data) / len(zlib.compress(data)), 3) if data else 0.0


def to_json(text: str, duration_s: float) -> dict[str, Any]:
    """`json`: the transcript and the audio duration used (OpenAI's `usage` of type `duration`)."""
    return {"text": text, "usage": {"type": "duration", "seconds": round(float(duration_s), 3)}}


def to_verbose_json(text: str, segments: list[dict], *, language: str, duration_s: float,
                    task: str = "transcribe", extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """`verbose_json`: OpenAI's fields plus soritune's own under `soritune` (decoding, timings, model).

    Per segment: `temperature` is the one actually used (0.0: greedy); `avg_logprob` and
    `no_speech_prob` are null because the greedy backends do not compute them; `compression_ratio`
    is computed from the text; `seek` is the start in 10 ms frames, as in Whisper; `tokens` are the
    generated text token ids; `truncated` says the chunk hit the token limit.
    """
    out_segments = []
    for i, seg in enumerate(segments):
        seg_text = str(seg.get("text", ""))
        out_segments.append({
            "id": i,
            "seek": int(round(float(seg["start"]) * 100)),
            "start": round(float(seg["start"]), 3),
            "end": round(float(seg["end"]), 3),
            "text": seg_text,
            "tokens": list(seg.get("tokens", [])),
            "temperature": 0.0,
            "avg_logprob": None,
            "compression_ratio": compression_ratio(seg_text),
            "no_speech_prob": None,
            "truncated": bool(seg.get("truncated", False)),
        })
    body: dict[str, Any] = {
        "task": task,
        "language": language,
        "duration": round(float(duration_s), 3),
        "text": text,
        "segments": out_segments,
        "usage": {"type": "duration", "seconds": round(float(duration_s), 3)},
    }
    if extra:
        body["soritune"] = extra
    return body


