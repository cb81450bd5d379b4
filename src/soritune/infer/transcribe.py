"""Transcribe recordings: plan chunks (VAD or pauses), batch every chunk of every file, reassemble.

A recording is one mono stream: a file, or with `diarize="channels"` each channel of a stereo call
(channel 1 the agent, channel 2 the customer by default), whose segments are labelled with the
speaker and merged by start time (VAD is then always on: each channel is mostly the other's silence). Segment and word times are seconds from the start of the file.
A file that cannot be read becomes a failed FileResult with its reason; the others still run.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Literal

import numpy as np

from soritune.audio import SAMPLE_RATE, load_audio, load_channels
from soritune.errors import AudioError
from soritune.infer.base import Backend
from soritune.infer.options import DecodeOptions
from soritune.infer.vad import PlannedChunk, plan_chunks

Diarize = Literal["none", "channels"]
DIARIZE = ("none", "channels")
SPEAKERS = ("agent", "customer")  # channel 1, channel 2 of a call-centre recording


@dataclass
class FileResult:
    path: str
    ok: bool
    text: str = ""
    segments: list[dict] = field(default_factory=list)
    duration_s: float = 0.0
    error: str | None = None  # reason tag when not ok (missing, empty, not_audio, corrupt, ...)
    detail: str | None = None
    language: str | None = None


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


def streams_of(audio_channels: list[np.ndarray], diarize: str, speakers=SPEAKERS) -> list[tuple[str | None, np.ndarray]]:
    """(speaker, mono audio) per stream: the channel mix, or one per channel when diarize="channels"."""
    if diarize not in DIARIZE:
        raise ValueError(f"diarize must be one of {', '.join(DIARIZE)}, got {diarize!r}")
    if diarize == "channels" and len(audio_channels) > 1:
        names = list(speakers) + [f"speaker_{i + 1}" for i in range(len(speakers), len(audio_channels))]
        return list(zip(names, audio_channels))
    mix = audio_channels[0] if len(audio_channels) == 1 else np.mean(audio_channels, axis=0).astype(np.float32)
    return [(None, mix)]


def file_segments(chunk: PlannedChunk, tr, speaker: str | None = None) -> list[dict]:
    """A chunk's decoded segments with times mapped to the file, and their decoding statistics.

    With word times, a segment that spans several speech regions of a VAD chunk (the pause between
    them was cut out) is split at those pauses, so segments start where speech starts."""
    out = []
    for seg in tr.segments:
        pieces: list[tuple[str, list[dict]]] = []
        for w in seg.get("words", []):
            region = chunk.region_of((w["start"] + w["end"]) / 2)
            word = {"start": chunk.in_speech(chunk.file_time(w["start"], region=region), region),
                    "end": chunk.in_speech(chunk.file_time(w["end"], region=region), region), "word": w["word"],
                    "probability": w.get("probability")}
            if not pieces or pieces[-1][0] != region:
                pieces.append((region, []))
            pieces[-1][1].append(word)
        if len(pieces) <= 1:
            words = pieces[0][1] if pieces else []
            parts = [(seg["text"], words, seg.get("tokens", []))]
        else:
            parts = [("".join(w["word"] for w in words).strip(), words, []) for _r, words in pieces]
        for text, words, tokens in parts:
            start = words[0]["start"] if words else _in_speech(chunk, seg["start"])
            end = words[-1]["end"] if words else _in_speech(chunk, seg["end"], is_end=True)
            item = {"start": round(start, 3), "end": round(max(end, start), 3), "text": text, "words": words,
                    "avg_logprob": tr.avg_logprob, "compression_ratio": tr.compression_ratio,
                    "no_speech_prob": tr.no_speech_prob, "temperature": tr.temperature,
                    "tokens": list(tokens), "truncated": bool(tr.hit_max_tokens)}
            if speaker:
                item["speaker"] = speaker
            out.append(item)
    return out


def _in_speech(chunk: PlannedChunk, t_s: float, is_end: bool = False) -> float:
    """A chunk time (s) -> file time, inside the speech of the region it falls in (PlannedChunk.in_speech)."""
    region = chunk.region_of(t_s, is_end)
    return chunk.in_speech(chunk.file_time(t_s, is_end=is_end, region=region), region)


def transcribe_streams(recordings: list[list[tuple[str | None, np.ndarray]]], backend: Backend,
                       options: DecodeOptions, *, on_chunks: Callable[[int], None] | None = None,
                       progress: Callable[[int], None] | None = None) -> list[tuple[list[dict], str | None]]:
    """(segments sorted by start, language) per recording; each recording is a list of (speaker, audio)."""
    planned: list[tuple[int, str | None, PlannedChunk]] = []
    keys = []
    for ri, streams in enumerate(recordings):
        for si, (speaker, audio) in enumerate(streams):
            for ch in plan_chunks(audio, options):
                planned.append((ri, speaker, ch))
                keys.append((ri, si))
    if on_chunks:
        on_chunks(len(planned))
    outs = backend.decode([c.audio for _r, _s, c in planned], options, keys=keys, progress=progress) if planned else []
    per_chunk = [file_segments(chunk, tr, speaker) for (_r, speaker, chunk), tr in zip(planned, outs)]
    if options.vad and options.timestamps and planned:
        per_chunk = _redecode_skipped(planned, outs, per_chunk, backend, options)
    results: list[tuple[list[dict], str | None]] = [([], options.language) for _ in recordings]
    for (ri, _speaker, _chunk), tr, segments in zip(planned, outs, per_chunk):
        results[ri][0].extend(segments)
        if results[ri][1] is None:
            results[ri] = (results[ri][0], tr.language)
    for segments, _lang in results:
        segments.sort(key=lambda s: (s["start"], s.get("speaker") or ""))
    return results


MIN_COVERED = 0.3  # a speech region less than this share covered by output segments was skipped
MAX_HOLE_S = 0.8  # ... or with at least this much of its speech under no output word: partly skipped
MAX_WORD_S = 1.0  # a word counts for at most this long (a longer one is stretched over speech not written)
MIN_WRITTEN = 0.5  # the second decode replaces the first pass's text in a region only if that is under this share of it


def _covered_s(region_s: tuple[float, float], segments: list[dict]) -> float:
    """Seconds of the region under the output: its words (each capped at MAX_WORD_S; their union), or
    without word times its segments."""
    words = [w for seg in segments for w in seg.get("words") or []]
    spans = ([(w["start"], min(w["end"], w["start"] + MAX_WORD_S)) for w in words] if words
             else [(seg["start"], seg["end"]) for seg in segments])
    covered, reach = 0.0, region_s[0]
    for lo, hi in sorted(spans):
        lo, hi = max(lo, reach), min(hi, region_s[1])
        if hi > lo:
            covered, reach = covered + hi - lo, hi
    return covered


def skipped_regions(chunk: PlannedChunk, segments: list[dict]) -> list[PlannedChunk]:
    """The speech regions of a chunk packed from several whose speech its output `segments` (file times)
    cover for less than MIN_COVERED, or (with word times) leave MAX_HOLE_S or more under no word, each as a chunk of its own (see `redecode_options`)."""
    if len(chunk.regions) < 2:
        return []  # decoded alone already
    words = any(seg.get("words") for seg in segments)
    out = []
    for k, reg in enumerate(chunk.regions):
        span = (reg.get("speech_start", reg["start"]) / SAMPLE_RATE, reg.get("speech_end", reg["end"]) / SAMPLE_RATE)
        covered = _covered_s(span, segments)
        if covered < MIN_COVERED * (span[1] - span[0]) or (words and span[1] - span[0] - covered >= MAX_HOLE_S):
            out.append(PlannedChunk(chunk.audio[_offset(chunk, k):_offset(chunk, k + 1)], [reg]))
    return out


def redecode_options(options: DecodeOptions) -> DecodeOptions:
    """How a skipped region is decoded again: as the first pass, without previous text (the region is not
    a continuation of text that skipped it)."""
    return options.model_copy(update={"condition_on_previous_text": False})


def _chars(segments: list[dict]) -> int:
    return sum(len("".join(seg["text"].split())) for seg in segments)


def with_redecoded(segments: list[dict], alone: PlannedChunk, tr, speaker: str | None = None) -> list[dict]:
    """A chunk's segments with whatever fell inside the region `alone` replaced by its second decode `tr`,
    when that writes the region: the first pass wrote less than MIN_WRITTEN of the second decode's
    characters there. Otherwise the first pass had written the region, and only its word times left a
    hole (a number or a unit written short for long speech, "917그램을" for a 2-s reading, counts as one
    word of at most MAX_WORD_S): its text, decoded with the rest of the chunk and its previous text, is kept."""
    lo, hi = alone.start_s, alone.end_s
    inside = [seg for seg in segments if lo <= (seg["start"] + seg["end"]) / 2 <= hi]
    again = file_segments(alone, tr, speaker)
    if _chars(inside) >= MIN_WRITTEN * _chars(again):
        return segments
    return [seg for seg in segments if seg not in inside] + again


def _redecode_skipped(planned, outs, per_chunk, backend, options: DecodeOptions) -> list[list[dict]]:
    """A second pass for what the first one skipped. In a chunk packed from several VAD speech regions,
    Whisper sometimes writes nothing for one of them: its timestamps jump over a sentence, or it ends the
    transcript early (models fine-tuned on one-sentence clips do). A region that the chunk's output
    segments cover for less than MIN_COVERED of its length is decoded again on its own (batched,
    `redecode_options`), and its output replaces whatever of the first pass fell inside it if that was
    less than half as long (`with_redecoded`: a first pass that wrote the region is kept). Silence stays
    silence: the no-speech rule and the fallback apply to the second pass as to the first. `soritune
    serve` runs the same steps (skipped_regions, redecode_options, with_redecoded) chunk by chunk."""
    todo = [(ci, alone) for ci, (_r, _s, chunk) in enumerate(planned)
            for alone in skipped_regions(chunk, per_chunk[ci])]
    if not todo:
        return per_chunk
    again = backend.decode([alone.audio for _ci, alone in todo], redecode_options(options),
                           keys=[planned[ci][:2] for ci, _alone in todo])
    out = [list(segs) for segs in per_chunk]
    for (ci, alone), tr in zip(todo, again):
        out[ci] = with_redecoded(out[ci], alone, tr, planned[ci][1])
    return out


def _offset(chunk: PlannedChunk, k: int) -> int:
    """Where region k starts in the chunk's concatenated audio (samples)."""
    return sum(r["end"] - r["start"] for r in chunk.regions[:k])


def transcribe_files(
    paths: list[str | Path], backend: Backend, options: DecodeOptions | None = None, *, diarize: str = "none",
    on_chunks: Callable[[int], None] | None = None, progress: Callable[[int], None] | None = None, **fields,
) -> TranscribeSummary:
    """Transcribe files with `options` (or DecodeOptions(**fields), e.g. language="en", max_new_tokens=8).

    on_chunks(total) is called once the number of chunks is known; progress(n) after each batch."""
    options = options or DecodeOptions(**fields)
    if diarize == "channels" and not options.vad:
        options = options.model_copy(update={"vad": True})  # turns need speech times: a channel is mostly silence
    start = time.perf_counter()
    results: list[FileResult] = []
    recordings, owners = [], []
    for path in paths:
        try:
            channels = load_channels(path) if diarize == "channels" else [load_audio(path)]
        except AudioError as e:
            results.append(FileResult(str(path), ok=False, error=e.reason, detail=e.detail or None))
            continue
        owners.append(len(results))
        results.append(FileResult(str(path), ok=True, duration_s=len(channels[0]) / SAMPLE_RATE))
        recordings.append(streams_of(channels, diarize))
    decoded = transcribe_streams(recordings, backend, options, on_chunks=on_chunks, progress=progress)
    for fi, (segments, language) in zip(owners, decoded):
        r = results[fi]
        r.segments, r.language = segments, language
        r.text = join_texts([s["text"] for s in segments])
    audio_s = sum(r.duration_s for r in results)
    return TranscribeSummary(results, audio_s, time.perf_counter() - start)
