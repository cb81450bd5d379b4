"""One upload -> one transcript: decode off the event loop, chunk at pauses, batch every chunk.

Long audio is cut as the `transcribe` CLI cuts it (`soritune.audio.chunk_audio`, <= 30 s at the
quietest point), each chunk goes through the micro-batcher on its own (so the chunks of one long
file are decoded together, and with other requests' clips), and one segment is made per chunk.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from soritune.audio import SAMPLE_RATE, chunk_audio, decode_bytes
from soritune.errors import AudioError
from soritune.serve.batcher import MicroBatcher
from soritune.serve.errors import ApiError
from soritune.serve.formats import join_texts

CHUNK_S = 30.0
_AUDIO_MESSAGES = {
    "empty": "the uploaded file is empty or holds no audio samples",
    "not_audio": "the uploaded file is not an audio file soritune can decode (wav, flac, ogg, mp3, m4a, webm, ...)",
    "corrupt": "the uploaded audio is corrupt (it decodes to non-finite samples)",
}


@dataclass
class TranscriptResult:
    text: str
    segments: list[dict]  # {start, end, text, tokens, truncated}, one per chunk
    duration_s: float
    language: str
    task: str
    decode_ms: float
    queue_ms: float  # longest wait of any chunk for the model
    inference_ms: float  # sum of the model calls its chunks were in
    batch_sizes: list[int] = field(default_factory=list)  # per chunk, the size of its model call


async def decode_upload(data: bytes, name: str, *, max_audio_s: float | None = None):
    """bytes -> 16 kHz float32 in a worker thread; bad audio -> ApiError 400 naming the reason."""
    try:
        audio = await asyncio.to_thread(decode_bytes, data, name)
    except AudioError as e:
        message = _AUDIO_MESSAGES.get(e.reason, f"the uploaded file could not be decoded ({e.reason})")
        detail = f": {e.detail}" if e.detail and e.reason != "empty" else ""
        raise ApiError(400, f"{message} [{name}]{detail}", param="file", code=f"audio_{e.reason}") from None
    duration_s = len(audio) / SAMPLE_RATE
    if max_audio_s and duration_s > max_audio_s:
        raise ApiError(400, f"audio is {duration_s:.0f} s long; this server accepts at most {max_audio_s:.0f} s",
                       param="file", code="audio_too_long")
    return audio


async def transcribe_upload(data: bytes, name: str, batcher: MicroBatcher, *, language: str,
                            task: str = "transcribe", max_audio_s: float | None = None) -> TranscriptResult:
    t0 = time.perf_counter()
    audio = await decode_upload(data, name, max_audio_s=max_audio_s)
    decode_ms = (time.perf_counter() - t0) * 1000
    chunks = chunk_audio(audio, max_s=CHUNK_S)
    results = await asyncio.gather(*(batcher.submit(c.audio, language, task) for c in chunks))
    segments = []
    for chunk, res in zip(chunks, results):
        tr = res.transcription
        segments.append({"start": round(chunk.start / SAMPLE_RATE, 3), "end": round(chunk.end / SAMPLE_RATE, 3),
                         "text": tr.text, "tokens": list(tr.tokens), "truncated": bool(tr.hit_max_tokens)})
    return TranscriptResult(
        text=join_texts([s["text"] for s in segments]), segments=segments, duration_s=len(audio) / SAMPLE_RATE,
        language=language, task=task, decode_ms=decode_ms,
        queue_ms=max(r.queue_ms for r in results),
        inference_ms=sum({r.batch_id: r.inference_ms for r in results}.values()),
        batch_sizes=[r.batch_size for r in results])
