"""Where to cut long audio: Silero VAD speech regions (faster-whisper's), or pauses in plain chunking.

`plan_chunks(audio, options)` returns the chunks the model decodes, each <= `options.chunk_s`:
- with `options.vad`: faster-whisper's Silero VAD (`faster_whisper.vad.get_speech_timestamps`, the
  bundled `silero_vad_v6.onnx`) finds the speech regions; consecutive regions are packed into one
  chunk up to `chunk_s`, with the non-speech between them cut out, so music, noise and silence never
  reach the decoder. Times inside a chunk map back to the file with faster-whisper's
  `SpeechTimestampsMap` (a chunk never holds the first region of another, unlike `collect_chunks`).
- without: `soritune.audio.chunk_audio` (<= 30 s windows cut at the quietest 25 ms).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from soritune.audio import SAMPLE_RATE, chunk_audio
from soritune.infer.options import DecodeOptions


@dataclass
class PlannedChunk:
    """Audio handed to the model, and how its times map back to the file."""

    audio: np.ndarray
    # [{start, end[, speech_start, speech_end]}] in file samples, concatenated into audio; speech_*: where
    # Silero heard speech begin and end inside the padded region (speech_regions)
    regions: list[dict] = field(default_factory=list)

    @property
    def start_s(self) -> float:
        return self.regions[0]["start"] / SAMPLE_RATE

    @property
    def end_s(self) -> float:
        return self.regions[-1]["end"] / SAMPLE_RATE

    def file_time(self, t_s: float, is_end: bool = False, region: int | None = None) -> float:
        """A time in the chunk's audio (seconds) -> seconds from the start of the file."""
        from faster_whisper.vad import SpeechTimestampsMap

        ts_map = SpeechTimestampsMap(self.regions, SAMPLE_RATE, time_precision=3)
        t_s = min(max(float(t_s), 0.0), len(self.audio) / SAMPLE_RATE)
        return ts_map.get_original_time(t_s, region, is_end=is_end)

    def in_speech(self, t_s: float, region: int) -> float:
        """A file time (s) moved inside region `region`'s speech (its VAD padding holds none): output
        times of a model whose timestamps or word alignment are loose stay on the speech they belong to."""
        reg = self.regions[min(max(region, 0), len(self.regions) - 1)]
        lo, hi = reg.get("speech_start", reg["start"]), reg.get("speech_end", reg["end"])
        return round(min(max(t_s, lo / SAMPLE_RATE), hi / SAMPLE_RATE), 3)

    def region_of(self, t_s: float, is_end: bool = False) -> int:
        from faster_whisper.vad import SpeechTimestampsMap

        return SpeechTimestampsMap(self.regions, SAMPLE_RATE).get_chunk_index(t_s, is_end)


def vad_options(options: DecodeOptions):
    from faster_whisper.vad import VadOptions

    return VadOptions(threshold=options.vad_threshold, min_silence_duration_ms=options.vad_min_silence_ms,
                      speech_pad_ms=options.vad_speech_pad_ms, min_speech_duration_ms=options.vad_min_speech_ms,
                      max_speech_duration_s=options.chunk_s)


def speech_regions(audio: np.ndarray, options: DecodeOptions) -> list[dict]:
    """Silero speech regions [{start, end}] in samples (faster-whisper's get_speech_timestamps)."""
    from faster_whisper.vad import get_speech_timestamps

    if len(audio) == 0:
        return []
    regions = [{"start": int(r["start"]), "end": int(r["end"])}
               for r in get_speech_timestamps(np.asarray(audio, dtype=np.float32), vad_options(options))]
    return with_speech_bounds(regions, int(SAMPLE_RATE * options.vad_speech_pad_ms / 1000), len(audio))


def with_speech_bounds(regions: list[dict], pad: int, n_samples: int) -> list[dict]:
    """Each padded region with `speech_start`/`speech_end`: where the speech Silero found lies inside it.
    get_speech_timestamps pads a region by exactly `pad` samples on a side where it does not touch a
    neighbour (a pause shorter than two pads is split between the two, so they touch) or the file's
    edge; there the speech starts `pad` later (ends `pad` earlier); elsewhere the bound is unknown and
    the region's own is kept."""
    out = []
    for i, r in enumerate(regions):
        free_before = r["start"] > 0 and (i == 0 or r["start"] - regions[i - 1]["end"] > 1)
        free_after = r["end"] < n_samples and (i == len(regions) - 1 or regions[i + 1]["start"] - r["end"] > 1)
        lo = r["start"] + pad if free_before else r["start"]
        hi = r["end"] - pad if free_after else r["end"]
        out.append({**r, "speech_start": min(lo, hi), "speech_end": max(lo, hi)})
    return out


def pack_regions(audio: np.ndarray, regions: list[dict], max_s: float) -> list[PlannedChunk]:
    """Consecutive regions packed into chunks of at most max_s seconds of speech, gaps cut out."""
    max_len = int(max_s * SAMPLE_RATE)
    chunks: list[list[dict]] = []
    size = 0
    for r in regions:
        n = r["end"] - r["start"]
        if chunks and size + n <= max_len:
            chunks[-1].append(r)
            size += n
        else:
            chunks.append([r])
            size = n
    return [PlannedChunk(np.concatenate([audio[r["start"]:r["end"]] for r in group]).astype(np.float32),
                         group) for group in chunks]


def plan_chunks(audio: np.ndarray, options: DecodeOptions) -> list[PlannedChunk]:
    """The chunks to decode for one recording (see the module doc). No speech under VAD: no chunk."""
    if options.vad:
        return pack_regions(audio, speech_regions(audio, options), options.chunk_s)
    return [PlannedChunk(ch.audio, [{"start": ch.start, "end": ch.end}])
            for ch in chunk_audio(audio, max_s=options.chunk_s)]
