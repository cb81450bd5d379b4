"""One upload decoded with `DecodeOptions` through the micro-batcher: whole, or streamed as SSE.

The chunks of an upload (Silero VAD regions or pauses, `soritune.infer.vad.plan_chunks`; with
`diarize=channels` the chunks of each channel, labelled agent / customer) are each submitted to the
micro-batcher, so they decode together and with other requests' chunks. The batcher groups clips by
a key it passes back to the model call; soritune makes that key the request's decoding options
(`DecodeOptions` as JSON, see `ServerState.run_batch`), so only clips decoded the same way share a
call. With no language given, the first chunk is decoded alone and its detected language is used for
the rest of the upload. With `condition_on_previous_text` each chunk waits for the one before it in
its stream (channel) and is prompted with its text, as `transcribe` does (serve.pipeline.submit_in_order).
With VAD and segment timestamps, a speech region of a packed chunk that the chunk's output skipped is
decoded again on its own, through the batcher, and replaces what fell inside it: `transcribe`'s second
pass (`soritune.infer.transcribe.skipped_regions`, `redecode_options`, `with_redecoded`), per chunk.

`stream=true` answers with server-sent events in OpenAI's shape, in time order as chunks finish:
`transcript.text.delta` per word (soritune adds `start`/`end`, seconds) or per segment without word
times, `transcript.text.segment` per segment (id, start, end, text, speaker), then
`transcript.text.done` with the whole text, then `data: [DONE]`.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator

from soritune.audio import SAMPLE_RATE, decode_channels
from soritune.infer.options import MAX_NEW_TOKENS, DecodeOptions
from soritune.infer.transcribe import (
    file_segments,
    join_texts,
    redecode_options,
    skipped_regions,
    streams_of,
    with_redecoded,
)
from soritune.infer.vad import plan_chunks
from soritune.serve.errors import ApiError
from soritune.serve.pipeline import NO_LIMIT, TranscriptResult, decode_upload, options_key, submit_in_order

DEFAULT_SPEAKER = "speaker_1"


def request_options(default: DecodeOptions, *, language: str | None, task: str, max_new_tokens: int, prompt: str | None,
                    temperature: float | None, words: bool, diarize: str) -> DecodeOptions:
    """The server's default DecodeOptions with what this request sets (prompt, temperature, word times)."""
    update: dict = {"language": language, "task": task, "max_new_tokens": min(max_new_tokens, MAX_NEW_TOKENS)}
    if prompt:
        update["initial_prompt"] = prompt
    if temperature:  # OpenAI's temperature: sample at it (0 or absent: the server's fallback ladder)
        update["temperatures"] = [float(temperature)]
    if words:
        update["word_timestamps"] = True
    if diarize == "channels":
        update["vad"] = True
    return default.model_copy(update=update)


async def decode_streams(data: bytes, name: str, diarize: str, max_audio_s: float | None, decode_slots=None):
    """(speaker, audio) streams of an upload, decoded off the event loop; bad audio -> ApiError 400
    (serve.pipeline.decode_upload's checks; a channel split decodes the checked file again, per channel)."""
    audio = await decode_upload(data, name, max_audio_s=max_audio_s, decode_slots=decode_slots)
    if diarize == "channels":
        async with decode_slots or NO_LIMIT:
            channels = await asyncio.to_thread(decode_channels, data, name)
    else:
        channels = [audio]
    return streams_of(channels, diarize), len(audio) / SAMPLE_RATE


async def transcribe_segments(streams, batcher, options: DecodeOptions, task: str, stats: dict,
                              max_queued_chunks: int = 8) -> AsyncIterator[list[dict]]:
    """The segments of each chunk, in start-time order, as soon as that chunk and all before it are done.
    The request's chunks wait in their own line of the batcher's fair queue, at most `max_queued_chunks`
    at a time; whatever is still queued is dropped when the caller stops (client gone, deadline)."""
    owner = object()
    in_flight = asyncio.Semaphore(max(1, max_queued_chunks))

    async def submit(audio, key, before=None):
        if before is not None and options.condition_on_previous_text:
            await asyncio.wait([before])  # its predecessor first (outside the in-flight cap: no deadlock)
        async with in_flight:
            return await submit_in_order(batcher, audio, key, task, owner=owner, options=options, before=before)

    planned = []
    for speaker, audio in streams:
        chunks = await asyncio.to_thread(plan_chunks, audio, options)
        planned.extend((speaker, c) for c in chunks)
    planned.sort(key=lambda p: p[1].start_s)
    if planned and options.language is None:
        first = await submit(planned[0][1].audio, options_key(options))
        options = options.model_copy(update={"language": first.transcription.language})
        futures = [asyncio.get_running_loop().create_future()]
        futures[0].set_result(first)
        planned_rest = planned[1:]
    else:
        futures, planned_rest = [], planned
    key = options_key(options)
    last = {planned[0][0]: futures[0]} if futures else {}  # per stream, its latest chunk (conditioning)
    for speaker, c in planned_rest:
        futures.append(asyncio.ensure_future(submit(c.audio, key, last.get(speaker))))
        last[speaker] = futures[-1]
    stats.update(language=options.language, queue_ms=0.0, batches={}, batch_sizes=[])

    def record(res) -> None:
        stats["queue_ms"] = max(stats["queue_ms"], res.queue_ms)
        stats["batches"][res.batch_id] = res.inference_ms
        stats["batch_sizes"].append(res.batch_size)

    try:
        for (speaker, chunk), fut in zip(planned, futures):
            res = await fut
            record(res)
            segments = file_segments(chunk, res.transcription, speaker)
            skipped = skipped_regions(chunk, segments) if options.vad and options.timestamps else []
            if skipped:  # the second pass, as transcribe's: each skipped region alone, batched
                again_key = options_key(redecode_options(options))
                for alone, res in zip(skipped, await asyncio.gather(*(submit(a.audio, again_key) for a in skipped))):
                    record(res)
                    segments = sorted(with_redecoded(segments, alone, res.transcription, speaker),
                                      key=lambda s: s["start"])
            yield segments
    finally:
        for fut in futures:
            fut.cancel()
        batcher.drop(owner)


async def transcribe_request(data: bytes, name: str, batcher, options: DecodeOptions, *, task: str, diarize: str,
                             max_audio_s: float | None, decode_slots=None, max_queued_chunks: int = 8
                             ) -> TranscriptResult:
    """The whole transcript of one upload (the non-streaming route) when it must be planned whole: VAD, a
    channel split or language detection. Otherwise serve.pipeline.transcribe_upload streams it in blocks."""
    t0 = time.perf_counter()
    streams, duration_s = await decode_streams(data, name, diarize, max_audio_s, decode_slots)
    decode_ms = (time.perf_counter() - t0) * 1000
    stats: dict = {}
    segments = [s async for part in transcribe_segments(streams, batcher, options, task, stats, max_queued_chunks)
                for s in part]
    segments.sort(key=lambda s: s["start"])
    return TranscriptResult(
        text=join_texts([s["text"] for s in segments]), segments=segments, duration_s=duration_s,
        language=stats.get("language") or options.language or "", task=task, decode_ms=decode_ms,
        queue_ms=stats.get("queue_ms", 0.0), inference_ms=sum(stats.get("batches", {}).values()),
        batch_sizes=stats.get("batch_sizes", []))


def sse(event: dict) -> str:
    return f"data: {json.dumps(event, ensure_ascii=False)}\n\n"


async def stream_events(data: bytes, name: str, batcher, options: DecodeOptions, *, task: str, diarize: str,
                        max_audio_s: float | None, on_done=None, decode_slots=None, max_queued_chunks: int = 8
                        ) -> AsyncIterator[str]:
    """Server-sent events of one upload (see the module doc). Errors after the start become an `error` event."""
    texts: list[str] = []
    n = 0
    try:
        streams, duration_s = await decode_streams(data, name, diarize, max_audio_s, decode_slots)
        async for segments in transcribe_segments(streams, batcher, options, task, {}, max_queued_chunks):
            for seg in segments:
                pieces = seg["words"] or [{"word": (" " if texts else "") + seg["text"], "start": seg["start"],
                                           "end": seg["end"]}]
                for w in pieces:
                    yield sse({"type": "transcript.text.delta", "delta": w["word"], "start": w["start"],
                               "end": w["end"], "segment_id": str(n)})
                yield sse({"type": "transcript.text.segment", "id": str(n), "start": seg["start"], "end": seg["end"],
                           "text": seg["text"], "speaker": seg.get("speaker") or DEFAULT_SPEAKER,
                           "avg_logprob": seg["avg_logprob"], "no_speech_prob": seg["no_speech_prob"]})
                texts.append(seg["text"])
                n += 1
        yield sse({"type": "transcript.text.done", "text": join_texts(texts), "duration": round(duration_s, 3)})
        if on_done:
            on_done(duration_s)
    except ApiError as e:
        yield sse({"type": "error", "error": {"message": e.message, "code": e.code, "param": e.param}})
    except Exception as e:  # noqa: BLE001 - the stream has started: report in-band, keep the server up
        yield sse({"type": "error", "error": {"message": f"transcription failed: {type(e).__name__}: {e}",
                                              "code": "transcription_failed"}})
    yield "data: [DONE]\n\n"
