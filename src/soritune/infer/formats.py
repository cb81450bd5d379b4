"""Transcript output formats: txt, json, srt, vtt. Segments are dicts {start, end, text} in seconds."""

from __future__ import annotations

import json

FORMATS = ("txt", "json", "srt", "vtt")


def _clock(seconds: float, sep: str) -> str:
    ms = int(round(max(seconds, 0.0) * 1000))
    h, ms = divmod(ms, 3_600_000)
    m, ms = divmod(ms, 60_000)
    s, ms = divmod(ms, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"


def to_srt(segments: list[dict]) -> str:
    blocks = []
    for i, seg in enumerate((s for s in segments if s["text"].strip()), 1):
        blocks.append(f"{i}\n{_clock(seg['start'], ',')} --> {_clock(seg['end'], ',')}\n{seg['text'].strip()}\n")
    return "\n".join(blocks)


def to_vtt(segments: list[dict]) -> str:
    blocks = ["WEBVTT\n"]
    for seg in segments:
        if seg["text"].strip():
            blocks.append(f"{_clock(seg['start'], '.')} --> {_clock(seg['end'], '.')}\n{seg['text'].strip()}\n")
    return "\n".join(blocks)


def render(fmt: str, text: str, segments: list[dict], meta: dict | None = None) -> str:
    if fmt == "txt":
        return text + "\n"
    if fmt == "json":
        return json.dumps({"text": text, "segments": segments, **(meta or {})}, ensure_ascii=False, indent=2) + "\n"
    if fmt == "srt":
        return to_srt(segments)
    if fmt == "vtt":
        return to_vtt(segments)
    raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")
