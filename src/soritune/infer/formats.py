"""Transcript output formats: txt, json, srt, vtt. Segments are dicts {start, end, text} in seconds.

A segment may carry `speaker` (call-centre audio split by channel: agent / customer): txt then has one
`[HH:MM:SS] speaker: text` line per turn, and srt/vtt cues start with `[speaker]` (WebVTT: `<v speaker>`)."""

from __future__ import annotations

import json

FORMATS = ("txt", "json", "srt", "vtt")


def clock(seconds: float, sep: str = ",") -> str:
    """Seconds -> HH:MM:SS,mmm (sep ',' for SRT, '.' for WebVTT), rounded to the millisecond."""
    ms = int(round(max(float(seconds), 0.0) * 1000))
    h, ms = divmod(ms, 3_600_000)
    m, ms = divmod(ms, 60_000)
    s, ms = divmod(ms, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"


def cue_text(text: str) -> str:
    """Text safe inside a cue: no blank lines (they end a cue), no '-->' (it starts a timing line)."""
    lines = [line.strip() for line in str(text).replace("-->", "->").splitlines()]
    return "\n".join(line for line in lines if line)


def _cues(segments: list[dict], voice: bool = False) -> list[tuple[float, float, str]]:
    cues = []
    for seg in segments:
        text = cue_text(seg.get("text", ""))
        if text and seg.get("speaker"):
            text = f"<v {seg['speaker']}>{text}" if voice else f"[{seg['speaker']}] {text}"
        if text:
            start = float(seg["start"])
            cues.append((start, max(float(seg["end"]), start), text))
    return cues


def to_srt(segments: list[dict]) -> str:
    """SubRip: numbered cues, `HH:MM:SS,mmm --> HH:MM:SS,mmm`, blank line between cues."""
    blocks = [f"{i}\n{clock(s, ',')} --> {clock(e, ',')}\n{t}\n" for i, (s, e, t) in enumerate(_cues(segments), 1)]
    return "\n".join(blocks)


def to_vtt(segments: list[dict]) -> str:
    """WebVTT: `WEBVTT` header, then cues `HH:MM:SS.mmm --> HH:MM:SS.mmm`."""
    blocks = ["WEBVTT\n"] + [f"{clock(s, '.')} --> {clock(e, '.')}\n{t}\n" for s, e, t in _cues(segments, voice=True)]
    return "\n".join(blocks)


def render(fmt: str, text: str, segments: list[dict], meta: dict | None = None) -> str:
    if fmt == "txt":
        if any(seg.get("speaker") for seg in segments):
            return "".join(f"[{clock(seg['start'], '.')[:8]}] {seg.get('speaker') or '?'}: {cue_text(seg['text'])}\n"
                           for seg in segments if cue_text(seg.get("text", "")))
        return text + "\n"
    if fmt == "json":
        return json.dumps({"text": text, "segments": segments, **(meta or {})}, ensure_ascii=False, indent=2) + "\n"
    if fmt == "srt":
        return to_srt(segments)
    if fmt == "vtt":
        return to_vtt(segments)
    raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")
