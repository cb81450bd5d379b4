"""Response formats of `/v1/audio/transcriptions`: json, text, srt, vtt, verbose_json.

Pure functions (segments in, text or dict out), so the `transcribe` CLI can reuse `to_srt` / `to_vtt`.
A segment is a dict `{start, end, text}` in seconds (plus, from soritune.infer.transcribe, `words`,
`avg_logprob`, `compression_ratio`, `no_speech_prob`, `temperature`, `tokens`, `truncated`, `speaker`). Segments with empty text get no subtitle cue (an empty cue
is invalid SRT); cues are numbered without gaps.
"""

from __future__ import annotations

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


from soritune.infer.decode import compression_ratio  # noqa: E402,F401  (re-exported)


def to_json(text: str, duration_s: float) -> dict[str, Any]:
    """`json`: the transcript and the audio duration used (OpenAI's `usage` of type `duration`)."""
    return {"text": text, "usage": {"type": "duration", "seconds": round(float(duration_s), 3)}}


def to_verbose_json(text: str, segments: list[dict], *, language: str, duration_s: float,
                    task: str = "transcribe", extra: dict[str, Any] | None = None, words: bool = False) -> dict[str, Any]:
    """`verbose_json`: OpenAI's fields plus soritune's own under `soritune` (decoding, timings, model).

    Per segment: `temperature` is the one of the attempt kept (fallback); `avg_logprob`,
    `compression_ratio` and `no_speech_prob` are the decoder's, of the chunk the segment came from;
    `seek` is the start in 10 ms frames, as in Whisper; `tokens` are the generated text token ids;
    `truncated` says the chunk hit the token limit; `speaker` is there for diarize=channels. With
    `words` (timestamp_granularities[]=word), a top-level `words` list [{word, start, end}] as OpenAI's.
    """
    out_segments = []
    for i, seg in enumerate(segments):
        seg_text = str(seg.get("text", ""))
        item = {
            "id": i,
            "seek": int(round(float(seg["start"]) * 100)),
            "start": round(float(seg["start"]), 3),
            "end": round(float(seg["end"]), 3),
            "text": seg_text,
            "tokens": list(seg.get("tokens", [])),
            "temperature": float(seg.get("temperature") or 0.0),
            "avg_logprob": seg.get("avg_logprob"),
            "compression_ratio": seg.get("compression_ratio", compression_ratio(seg_text)),
            "no_speech_prob": seg.get("no_speech_prob"),
            "truncated": bool(seg.get("truncated", False)),
        }
        if seg.get("speaker"):
            item["speaker"] = seg["speaker"]
        out_segments.append(item)
    body: dict[str, Any] = {
        "task": task,
        "language": language,
        "duration": round(float(duration_s), 3),
        "text": text,
        "segments": out_segments,
        "usage": {"type": "duration", "seconds": round(float(duration_s), 3)},
    }
    if words:
        body["words"] = [{"word": w["word"].strip(), "start": round(float(w["start"]), 3), "end": round(float(w["end"]), 3)}
                         for seg in segments for w in seg.get("words", [])]
    if extra:
        body["soritune"] = extra
    return body
