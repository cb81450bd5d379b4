"""Serving a speech LLM (soritune.speechllm): `soritune serve --model RUN_DIR` where RUN_DIR is a trained
speech-LLM run (`soritune speechllm train`; the run or its model/ folder).

Routes (next to the usual ones):
  POST /v1/chat/completions      OpenAI chat API: a user message whose content holds one `input_audio` part
                                 ({"data": base64, "format": "wav" | "mp3" | ...}) and text parts (the
                                 prompt; default: the transcribe instruction); an optional system message.
                                 `stream: true` answers Server-Sent Events of `chat.completion.chunk`s as
                                 OpenAI's API does (role chunk, content deltas, a finish chunk, the usage chunk
                                 when `stream_options.include_usage`, then `data: [DONE]`).
  POST /v1/audio/transcriptions  unchanged route: the speech LLM is the backend (`transcribe` prompt per
                                 <= 30-s chunk of the upload, through serve's bounded pipeline).

Decoding is greedy (a requested temperature is reported back, not applied). One generation runs at a time
(a lock): the model is not batched across requests. A streamed answer whose client disconnects stops at the
next token.

    client.chat.completions.create(model="x", messages=[{"role": "user", "content": [
        {"type": "text", "text": "Transcribe the audio."},
        {"type": "input_audio", "input_audio": {"data": base64.b64encode(wav).decode(), "format": "wav"}}]}])
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
from fastapi import Request
from fastapi.responses import JSONResponse, StreamingResponse

from soritune.serve.errors import ApiError
from soritune.speechllm.config import DEFAULT_PROMPTS

TRANSLATE_PROMPT = "Translate the speech into English."
MAX_COMPLETION_TOKENS = 4096
JSON_OVERHEAD_BYTES = 64 * 1024
CHAT_ROUTE = "/v1/chat/completions"


def speech_llm_dir(spec: str) -> Path | None:
    """The model folder of a speech-LLM run named by a serve model spec, or None (a Whisper spec)."""
    path = Path(str(spec))
    for cand in (path, path / "model"):
        if (cand / "projector.safetensors").is_file() and (cand / "config.yaml").is_file():
            return cand
    return None


class _Cancelled(Exception):
    pass


def _token_streamer(tokenizer, on_text: Callable[[str], None], cancelled: threading.Event):
    """A transformers TextStreamer whose finished text pieces go to `on_text`; it aborts generation (by
    raising inside generate) once `cancelled` is set."""
    from transformers import TextStreamer

    class Streamer(TextStreamer):
        first_token_at: float | None = None

        def put(self, value):
            if cancelled.is_set():
                raise _Cancelled
            if not self.next_tokens_are_prompt and self.first_token_at is None and value.numel():
                self.first_token_at = time.perf_counter()
            super().put(value)

        def on_finalized_text(self, text: str, stream_end: bool = False):
            if text:
                on_text(text)

    return Streamer(tokenizer, skip_prompt=True, skip_special_tokens=True)


class SpeechLLMBackend:
    """A loaded SpeechLLM behind serve's backend interface (`transcribe`, `describe`) plus `answer` for chat."""

    name = "speechllm"

    def __init__(self, model, model_dir: str | Path | None = None):
        self.model = model
        self.model_dir = str(model_dir) if model_dir else None
        self.lock = threading.Lock()

    @classmethod
    def load(cls, spec: str, device: str = "cpu") -> SpeechLLMBackend:
        from soritune.errors import ModelSpecError
        from soritune.speechllm.model import SpeechLLM

        model_dir = speech_llm_dir(spec)
        if model_dir is None:
            raise ModelSpecError(f"{spec}: not a speech-LLM run (no projector.safetensors + config.yaml)")
        model = SpeechLLM.load(model_dir).to(device)
        model.train(False)
        return cls(model, model_dir)

    def answer(self, audio: np.ndarray, prompt: str | None, *, system: str | None = None, max_new_tokens: int = 128,
               on_text: Callable[[str], None] | None = None, cancelled: threading.Event | None = None) -> dict:
        """Greedy answer to one clip + prompt: text, token counts, finish reason, audio facts and timings."""
        cancelled = cancelled or threading.Event()
        streamer = _token_streamer(self.model.tokenizer, on_text or (lambda _t: None), cancelled)
        with self.lock:
            t0 = time.perf_counter()
            try:
                text = self.model.generate(audio, prompt or DEFAULT_PROMPTS["transcribe"], system=system,
                                           max_new_tokens=max_new_tokens, streamer=streamer)
            except _Cancelled:
                return {"cancelled": True}
            gen = dict(self.model.last_generation)
            total_s = time.perf_counter() - t0
        info = gen["audio"]
        first = streamer.first_token_at
        return {"text": text, "prompt_tokens": gen["prompt_tokens"], "completion_tokens": gen["new_tokens"],
                "finish_reason": "length" if gen["hit_max_tokens"] else "stop", "cancelled": False,
                "audio": {"audio_s": round(info.audio_s, 3), "n_chunks": info.n_chunks,
                          "audio_tokens": info.n_audio_tokens, "truncated_s": info.truncated_s},
                "timings_ms": {"ttft": round((first - t0) * 1000, 1) if first else None,
                               "total": round(total_s * 1000, 1)}}

    def transcribe(self, audios, *, language: str = "ko", task: str = "transcribe", batch_size: int = 8,
                   max_new_tokens: int = 128, progress=None):
        """serve's backend interface: one Transcription per <= 30-s clip (the instruction by task)."""
        from soritune.infer.base import Transcription

        prompt = TRANSLATE_PROMPT if task == "translate" else DEFAULT_PROMPTS["transcribe"]
        out = []
        for audio in audios:
            result = self.answer(audio, prompt, max_new_tokens=max_new_tokens)
            out.append(Transcription(text=result["text"], n_tokens=result["completion_tokens"],
                                     hit_max_tokens=result["finish_reason"] == "length", language=language))
            if progress:
                progress(1)
        return out

    def describe(self) -> dict:
        d = self.model.describe()
        return {"name": self.name, "run": self.model_dir, "encoder": d["config"]["encoder"],
                "projector": d["config"]["projector"], "llm": d["config"]["llm"], "lora": d["config"]["lora"],
                "decoding": "greedy"}


@dataclass
class ChatRequest:
    audio_b64: str
    audio_format: str
    prompt: str | None
    system: str | None
    max_tokens: int
    stream: bool
    include_usage: bool
    temperature: float | None


def _text_of(content, where: str) -> str:
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise ApiError(400, f"{where}: content must be a string or a list of parts", param=where)
    texts = []
    for k, part in enumerate(content):
        if not isinstance(part, dict) or part.get("type") != "text" or not isinstance(part.get("text"), str):
            raise ApiError(400, f"{where}[{k}]: only text parts are accepted here", param=f"{where}[{k}]")
        texts.append(part["text"])
    return "\n".join(texts)


def parse_chat_request(body, default_max_tokens: int) -> ChatRequest:
    """Validate an OpenAI chat-completions body for a speech LLM: one user turn with one input_audio part
    (and text parts), an optional system message before it. Errors name the offending field."""
    if not isinstance(body, dict):
        raise ApiError(400, "the request body must be a JSON object", code="invalid_json")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise ApiError(400, "messages: a non-empty list is required", param="messages")
    system, user = None, None
    for i, msg in enumerate(messages):
        role = msg.get("role") if isinstance(msg, dict) else None
        if role in ("system", "developer") and user is None:
            system = _text_of(msg.get("content"), f"messages[{i}].content")
        elif role == "user" and user is None:
            user = (i, msg.get("content"))
        else:
            raise ApiError(400, f"messages[{i}]: this speech LLM answers one user turn (an optional system message, "
                                f"then one user message with the audio); got role {role!r} here",
                           param=f"messages[{i}]")
    if user is None:
        raise ApiError(400, "messages: no user message", param="messages")
    i, content = user
    parts = [{"type": "text", "text": content}] if isinstance(content, str) else content
    if not isinstance(parts, list):
        raise ApiError(400, f"messages[{i}].content must be a string or a list of parts", param=f"messages[{i}].content")
    texts, audios = [], []
    for k, part in enumerate(parts):
        where = f"messages[{i}].content[{k}]"
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text" and isinstance(part.get("text"), str):
            texts.append(part["text"])
        elif kind == "input_audio" and isinstance(part.get("input_audio"), dict):
            audio = part["input_audio"]
            if not isinstance(audio.get("data"), str) or not audio["data"]:
                raise ApiError(400, f"{where}.input_audio.data: base64 audio is required", param=f"{where}.input_audio.data")
            audios.append((audio["data"], str(audio.get("format") or "wav")))
        else:
            raise ApiError(400, f"{where}: expected a text part or an input_audio part, got type {kind!r}",
                           param=where)
    if len(audios) != 1:
        raise ApiError(400, f"messages[{i}].content: exactly one input_audio part is required, got {len(audios)}",
                       param=f"messages[{i}].content", code="audio_required")
    max_tokens = body.get("max_completion_tokens", body.get("max_tokens")) or default_max_tokens
    if not isinstance(max_tokens, int) or not 1 <= max_tokens <= MAX_COMPLETION_TOKENS:
        raise ApiError(400, f"max_tokens: an integer from 1 to {MAX_COMPLETION_TOKENS} is required", param="max_tokens")
    if body.get("n", 1) != 1:
        raise ApiError(400, "n: only 1 choice is generated", param="n")
    options = body.get("stream_options") or {}
    temperature = body.get("temperature")
    return ChatRequest(audio_b64=audios[0][0], audio_format=audios[0][1],
                       prompt="\n".join(t for t in texts if t.strip()) or None, system=system or None,
                       max_tokens=max_tokens, stream=bool(body.get("stream")),
                       include_usage=bool(isinstance(options, dict) and options.get("include_usage")),
                       temperature=float(temperature) if isinstance(temperature, (int, float)) else None)


async def _read_json(request: Request, limit_bytes: int):
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit_bytes:
        raise _too_large(limit_bytes)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit_bytes:
            raise _too_large(limit_bytes)
    try:
        return json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ApiError(400, f"the request body is not valid JSON ({e})", code="invalid_json") from None


def _too_large(limit_bytes: int) -> ApiError:
    return ApiError(413, f"request too large: this server accepts bodies up to {limit_bytes / 1e6:g} MB "
                         "(base64 audio: --max-upload-mb x 4/3)", code="request_too_large")


def _decode_b64(data: str, param: str) -> bytes:
    if data.startswith("data:") and "," in data:  # a data URL
        data = data.split(",", 1)[1]
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise ApiError(400, f"{param}: not valid base64", param=param, code="invalid_base64") from None


def _chunk(cid: str, created: int, model: str, delta: dict, finish: str | None = None, **extra) -> str:
    body = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
            "system_fingerprint": None, "choices": [{"index": 0, "delta": delta, "logprobs": None,
                                                     "finish_reason": finish}], **extra}
    return f"data: {json.dumps(body, ensure_ascii=False)}\n\n"


def install_chat_routes(app, state, check_auth: Callable) -> None:
    """Add POST /v1/chat/completions to a serve app (`state`: serve.app.ServerState)."""

    @app.post(CHAT_ROUTE)
    async def chat_completions(request: Request):
        from soritune.serve.pipeline import ClientGone, decode_upload, guard

        config = state.config
        check_auth(request, config)
        t0 = time.perf_counter()
        body = await _read_json(request, int(config.max_upload_bytes * 4 / 3) + JSON_OVERHEAD_BYTES)
        chat = parse_chat_request(body, config.max_new_tokens)
        if not state.ready:
            raise ApiError(503, f"model not ready: {state.load_error}" if state.load_error else
                           "the model is still loading; retry shortly (see GET /health)",
                           code="model_not_ready", headers={"Retry-After": "2"})
        backend = state.backend
        if not isinstance(backend, SpeechLLMBackend):
            raise ApiError(400, f"this server hosts the transcription model {config.model_id!r}; chat completions "
                                "need a speech LLM (soritune serve --model SPEECHLLM_RUN_DIR)", code="not_a_chat_model")
        if state.draining:
            raise ApiError(503, "the server is shutting down; retry on another instance", code="server_shutting_down",
                           type="server_error", headers={"Retry-After": "5"})
        audio_param = "messages.content.input_audio.data"
        data = _decode_b64(chat.audio_b64, audio_param)
        audio = await decode_upload(data, f"input_audio.{chat.audio_format}", max_audio_s=config.max_audio_s,
                                    decode_slots=state.decode_slots)
        state.metrics.audio_s.inc(len(audio) / 16000)
        cid, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
        extra = {"decoding": "greedy", "temperature_requested": chat.temperature}
        if chat.stream:
            return StreamingResponse(_stream(backend, audio, chat, cid, created, config.model_id, extra),
                                     media_type="text/event-stream", headers={"Cache-Control": "no-cache"})
        cancelled = threading.Event()
        work = asyncio.to_thread(backend.answer, audio, chat.prompt, system=chat.system,
                                 max_new_tokens=chat.max_tokens, cancelled=cancelled)
        try:
            result = await guard(work, receive=request.receive, deadline_s=config.request_timeout_s,
                                 drain_expired=state.drain_expired)
        except ClientGone:
            cancelled.set()
            from fastapi.responses import Response

            return Response(status_code=499)
        except ApiError:
            cancelled.set()
            raise
        state.metrics.latency.observe(time.perf_counter() - t0)
        return JSONResponse({
            "id": cid, "object": "chat.completion", "created": created, "model": config.model_id,
            "system_fingerprint": None,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": result["text"], "refusal": None},
                         "logprobs": None, "finish_reason": result["finish_reason"]}],
            "usage": _usage(result),
            "soritune": {**extra, "audio": result["audio"],
                         "timings_ms": {**result["timings_ms"], "request": round((time.perf_counter() - t0) * 1000, 1)}},
        })


def _usage(result: dict) -> dict:
    return {"prompt_tokens": result["prompt_tokens"], "completion_tokens": result["completion_tokens"],
            "total_tokens": result["prompt_tokens"] + result["completion_tokens"]}


async def _stream(backend: SpeechLLMBackend, audio, chat: ChatRequest, cid: str, created: int, model: str,
                  extra: dict):
    """SSE: a role chunk, one chunk per decoded text piece, the finish chunk, the usage chunk if asked, [DONE].
    The generation runs in a worker thread; text pieces cross to the event loop through a queue."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue = asyncio.Queue()
    cancelled = threading.Event()
    done = object()

    def run():
        try:
            return backend.answer(audio, chat.prompt, system=chat.system, max_new_tokens=chat.max_tokens,
                                  on_text=lambda t: loop.call_soon_threadsafe(queue.put_nowait, t),
                                  cancelled=cancelled)
        finally:
            loop.call_soon_threadsafe(queue.put_nowait, done)

    task = asyncio.ensure_future(asyncio.to_thread(run))
    try:
        yield _chunk(cid, created, model, {"role": "assistant", "content": "", "refusal": None})
        leading = True
        while (piece := await queue.get()) is not done:
            if leading:  # the non-streamed answer is stripped: so is the stream's start
                piece = piece.lstrip()
                leading = not piece
            if piece:
                yield _chunk(cid, created, model, {"content": piece})
        try:
            result = await task
        except Exception as e:  # noqa: BLE001 - the stream has begun: the error goes in the stream
            err = {"error": {"message": f"generation failed: {type(e).__name__}: {e}", "type": "server_error",
                             "param": None, "code": "generation_failed"}}
            yield f"data: {json.dumps(err)}\n\n"
            return
        yield _chunk(cid, created, model, {}, result["finish_reason"],
                     soritune={**extra, "audio": result["audio"], "timings_ms": result["timings_ms"]})
        if chat.include_usage:
            body = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
                    "system_fingerprint": None, "choices": [], "usage": _usage(result)}
            yield f"data: {json.dumps(body)}\n\n"
        yield "data: [DONE]\n\n"
    finally:
        cancelled.set()  # a client gone mid-stream stops the generation at its next token
        if not task.done():
            await asyncio.gather(task, return_exceptions=True)
