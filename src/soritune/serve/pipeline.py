"""One upload -> one transcript: decode in blocks off the event loop, chunk at pauses, batch every chunk.

Long audio is cut as the `transcribe` CLI cuts it (`soritune.audio.iter_chunks`, <= 30 s at the
quietest point), each chunk goes through the micro-batcher on its own (so the chunks of one long
file are decoded together, and with other requests' clips), and one segment is made per chunk.

Bounded work per request: the duration in the file's header is checked against `max_audio_s` before
anything is decoded; decoding runs block by block in a worker thread, at most `decode_slots` blocks
at once across the server, and only while fewer than `max_queued_chunks` of the request's chunks wait
for the model (back-pressure); chunks decoded meanwhile are submitted together, so they share batches.
The cap (`--max-chunks-per-request`, default 2) also bounds what a newcomer waits for: the batch
running when it arrives holds at most that many of a long upload's chunks. On CPU a chunk costs the
same alone or in a batch of 8 (CTranslate2 whisper-base, 2 cores: 6.4 vs 6.5 s a chunk under load),
so a small cap costs a lone long upload nothing there; on a GPU raise it. So memory does not grow with the length of an upload, and a long
upload's chunks enter the batcher's fair queue a few at a time.

With `condition_on_previous_text` a chunk is submitted once the chunk before it is decoded, with that
chunk's `next_context` as its prompt (`submit_in_order`): the prompts `transcribe` gives the same
chunks (`soritune.infer.decode`, one rule); chunks of other requests still share its batches.

`guard(...)` runs a transcription until it finishes, its client disconnects, its deadline passes or
the server's drain grace runs out; in the last three cases its queued chunks are dropped at once.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

import numpy as np

from soritune.audio import SAMPLE_RATE, iter_chunks, iter_decode
from soritune.errors import AudioError
from soritune.infer.options import DecodeOptions
from soritune.infer.transcribe import file_segments
from soritune.infer.vad import PlannedChunk
from soritune.serve.batcher import MicroBatcher
from soritune.serve.errors import ApiError
from soritune.serve.formats import join_texts

CHUNK_S = 30.0
DISCONNECT_POLL_S = 0.25
_AUDIO_MESSAGES = {
    "empty": "the uploaded file is empty or holds no audio samples",
    "not_audio": "the uploaded file is not an audio file soritune can decode (wav, flac, ogg, mp3, m4a, webm, ...)",
    "corrupt": "the uploaded audio is corrupt",
}


@dataclass
class TranscriptResult:
    text: str
    segments: list[dict]  # {start, end, text, tokens, truncated}, one per chunk
    duration_s: float
    language: str
    task: str
    decode_ms: float  # time spent decoding blocks (and waiting for a decode slot)
    queue_ms: float  # longest wait of any chunk for the model
    inference_ms: float  # sum of the model calls its chunks were in
    batch_sizes: list[int] = field(default_factory=list)  # per chunk, the size of its model call


def audio_api_error(e: AudioError, name: str, max_audio_s: float | None) -> ApiError:
    if e.reason == "too_long":
        return ApiError(400, f"audio too long [{name}]: {e.detail} (this server accepts at most "
                             f"{max_audio_s:.0f} s)", param="file", code="audio_too_long")
    message = _AUDIO_MESSAGES.get(e.reason, f"the uploaded file could not be decoded ({e.reason})")
    detail = f": {e.detail}" if e.detail and e.reason != "empty" else ""
    return ApiError(400, f"{message} [{name}]{detail}", param="file", code=f"audio_{e.reason}")


def options_key(options: DecodeOptions) -> str:
    """The micro-batcher key of clips decoded with `options` (ServerState.run_batch parses it back)."""
    return options.model_dump_json()


async def submit_in_order(batcher: MicroBatcher, audio: np.ndarray, key: str, task: str, *, owner,
                          options: DecodeOptions | None, before=None):
    """Submit one chunk of an upload. With previous-text conditioning, first wait for `before` (the
    awaitable ClipResult of the chunk before it in the same stream) and prompt with its `next_context`."""
    context = None
    if before is not None and options is not None and options.condition_on_previous_text:
        context = getattr((await before).transcription, "next_context", None)
    return await batcher.submit(audio, key, task, owner=owner, context=context)


async def decode_upload(data: bytes, name: str, *, max_audio_s: float | None = None,
                        decode_slots: asyncio.Semaphore | None = None) -> np.ndarray:
    """The whole upload as 16 kHz mono float32 (for VAD and channel planning), decoded block by block in a
    worker thread under a decode slot, the header's duration checked first; bad audio -> ApiError 400."""
    def run() -> np.ndarray:
        return np.concatenate(list(iter_decode(data, name, max_duration_s=max_audio_s)))

    try:
        async with decode_slots or NO_LIMIT:
            return await asyncio.to_thread(run)
    except AudioError as e:
        raise audio_api_error(e, name, max_audio_s) from None


async def transcribe_upload(data: bytes, name: str, batcher: MicroBatcher, *, language: str,
                            task: str = "transcribe", max_audio_s: float | None = None,
                            decode_slots: asyncio.Semaphore | None = None,
                            max_queued_chunks: int = 8, options: DecodeOptions | None = None) -> TranscriptResult:
    """Streamed decoding (memory bounded by blocks, not by the upload's length) of pause-cut 30-s chunks.
    With `options` the chunks decode with them (segment times, words, prompt); else greedily in `language`."""
    owner = object()  # this request's line in the batcher's fair queue
    key = options_key(options) if options is not None else language
    chunks_iter = iter_chunks(iter_decode(data, name, max_duration_s=max_audio_s), max_s=CHUNK_S)
    in_flight = asyncio.Semaphore(max(1, max_queued_chunks))
    decode_s, chunks, tasks = 0.0, [], []

    async def submit(chunk, before):
        try:
            return await submit_in_order(batcher, chunk.audio, key, task, owner=owner, options=options, before=before)
        finally:
            in_flight.release()

    ready: list = []  # decoded chunks not yet submitted: sent together, so they can share a batch

    def flush() -> None:
        for c in ready:
            tasks.append(asyncio.ensure_future(submit(c, tasks[-1] if tasks else None)))
        ready.clear()

    try:
        while True:
            if ready and in_flight.locked():  # as many chunks out as allowed: let the model catch up
                flush()
            await in_flight.acquire()
            t0 = time.perf_counter()
            try:
                async with decode_slots or NO_LIMIT:
                    chunk = await asyncio.to_thread(next, chunks_iter, None)
            except AudioError as e:
                raise audio_api_error(e, name, max_audio_s) from None
            decode_s += time.perf_counter() - t0
            if chunk is None or (chunk.start == 0 and chunk.audio.size == 0):
                in_flight.release()
                if not chunks and chunk is not None:
                    raise audio_api_error(AudioError(name, "empty"), name, max_audio_s)
                break
            chunks.append(chunk)
            ready.append(chunk)
        flush()
        results = await asyncio.gather(*tasks)
    finally:
        for t in tasks:
            t.cancel()
        batcher.drop(owner)
    segments = []
    for chunk, res in zip(chunks, results):
        tr = res.transcription
        if options is not None and (getattr(tr, "segments", None) or not tr.text):  # timestamped segments (or nothing said)
            segments += file_segments(PlannedChunk(chunk.audio, [{"start": chunk.start, "end": chunk.end}]), tr)
            continue
        segments.append({"start": round(chunk.start / SAMPLE_RATE, 3), "end": round(chunk.end / SAMPLE_RATE, 3),
                         "text": tr.text, "tokens": list(tr.tokens), "truncated": bool(tr.hit_max_tokens),
                         "words": [], **{k: getattr(tr, k, None) for k in ("avg_logprob", "compression_ratio",
                                                                            "no_speech_prob")}})
    return TranscriptResult(
        text=join_texts([s["text"] for s in segments]), segments=segments, duration_s=chunks[-1].end / SAMPLE_RATE,
        language=language, task=task, decode_ms=decode_s * 1000,
        queue_ms=max(r.queue_ms for r in results),
        inference_ms=sum({r.batch_id: r.inference_ms for r in results}.values()),
        batch_sizes=[r.batch_size for r in results])


class _NoLimit:
    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc):
        return False


NO_LIMIT = _NoLimit()


async def guard(work, *, receive=None, deadline_s: float | None = None,
                drain_expired: asyncio.Event | None = None):
    """Await the coroutine `work`, cancelling it (which drops its queued chunks) when the client is gone
    (the ASGI `receive` says http.disconnect), `deadline_s` passes (ApiError 504) or `drain_expired` is set (503)."""
    task = asyncio.ensure_future(work)
    watchers = []
    if receive is not None:
        watchers.append(asyncio.ensure_future(_wait_disconnect(receive)))
    if drain_expired is not None:
        watchers.append(asyncio.ensure_future(drain_expired.wait()))
    try:
        done, _ = await asyncio.wait([task, *watchers], timeout=deadline_s, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in watchers:
            w.cancel()
        if not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    if task in done:
        return task.result()
    if not done:
        raise ApiError(504, f"the transcription did not finish within the server's {deadline_s:g} s request "
                            "deadline (--request-timeout-s); its queued work was dropped",
                       code="request_timeout", type="server_error")
    if drain_expired is not None and drain_expired.is_set():
        raise ApiError(503, "the server is shutting down and this transcription did not finish within its "
                            "drain grace (--shutdown-grace-s); retry on another instance",
                       code="server_shutting_down", type="server_error", headers={"Retry-After": "5"})
    raise ClientGone()


class ClientGone(Exception):
    """The client disconnected; nothing can be sent back."""


async def _wait_disconnect(receive) -> None:
    """Wait on the ASGI `receive` (the request body is read): its next message is http.disconnect."""
    while (await receive())["type"] != "http.disconnect":
        await asyncio.sleep(DISCONNECT_POLL_S)
