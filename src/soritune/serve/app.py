"""The OpenAI-compatible transcription server: `create_app(ServeConfig(...))` -> FastAPI app.

Routes:
  POST /v1/audio/transcriptions   OpenAI-compatible (the official `openai` client works unchanged)
  POST /v1/audio/translations     the same, task=translate (speech -> English text)
  GET  /v1/models                 the one served model (any `model` value is accepted on POST)
  GET  /health                    200 once the model is loaded; 503 while loading or if loading failed
  GET  /metrics                   Prometheus text: requests, errors, latency, audio seconds, batch sizes
  GET  /                          a web page to upload or record audio and see transcript and timings

The model loads in a background thread after start-up (unless a loaded backend is passed in), so
`/health` tells load balancers when the server is ready. With `api_key` set, `/v1/*` needs
`Authorization: Bearer KEY`; `/`, `/health` and `/metrics` stay open, but `/health` then shows only
its status to a caller without the key (model spec, adapter path and limits need the key).
Hostile uploads are bounded (see serve/pipeline.py): header-probed duration, blockwise decoding,
capped concurrent decodes, fair turns between requests, a per-request deadline, queued work dropped
when the client disconnects; on SIGTERM the server drains for `shutdown_grace_s` and answers 503 to
what is still running then (serve/runner.py). Every error is JSON in the
OpenAI shape (see serve/errors.py); nothing a client sends stops the server.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from contextlib import asynccontextmanager
from importlib import resources

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles

from soritune.infer.options import DecodeOptions
from soritune.serve.batcher import MicroBatcher
from soritune.serve.chat import CHAT_ROUTE, SpeechLLMBackend, install_chat_routes, speech_llm_dir
from soritune.serve.config import ServeConfig  # noqa: F401 - re-exported: `from soritune.serve.app import ServeConfig`
from soritune.serve.errors import ApiError, install_error_handlers
from soritune.serve.metrics import CONTENT_TYPE, ServeMetrics

log = logging.getLogger("soritune.serve")
ROUTES = ("/", "/health", "/metrics", "/v1/models", "/v1/audio/transcriptions", "/v1/audio/translations",
          CHAT_ROUTE)


class ServerState:
    """What the routes share: config, metrics, the backend once loaded, the batcher."""

    def __init__(self, config: ServeConfig, backend=None, on_load_error=None):
        self.config = config
        self.metrics = ServeMetrics.create()
        self.backend = backend
        self.load_error: str | None = None
        self.on_load_error = on_load_error
        self.languages: dict[str, str] = {}
        self.batcher: MicroBatcher | None = None
        self.loaded_at: float | None = None
        self.decode_slots: asyncio.Semaphore | None = None  # created in the event loop (lifespan)
        self.draining = False  # SIGTERM seen: new transcriptions get 503
        self.drain_expired: asyncio.Event | None = None  # set when the drain grace is over
        self.closing = False
        self.gate: dict | None = None  # the hallucination gate's verdict, when config.gate is on

    def begin_drain(self) -> None:
        """In the event loop: refuse new work, and end what still runs after the grace with a 503."""
        if self.draining:
            return
        self.draining = True
        log.info("draining: running transcriptions have %.0f s to finish", self.config.shutdown_grace_s)
        if self.drain_expired is not None:
            asyncio.get_running_loop().call_later(self.config.shutdown_grace_s, self.drain_expired.set)

    def close_backend(self) -> None:
        """Release what the backend holds on disk (a converted CTranslate2 copy in the temp folder)."""
        self.closing = True
        close = getattr(self.backend, "close", None)
        if close is not None:
            close()

    @property
    def ready(self) -> bool:
        return self.backend is not None and self.loaded_at is not None

    def mark_ready(self, backend) -> None:
        self.backend = backend
        self.languages = model_languages(backend)
        if self.config.language not in self.languages:
            from soritune.errors import ConfigError

            raise ConfigError(f"--language {self.config.language!r} is not a language this model knows "
                              f"(known: {', '.join(sorted(self.languages))})")
        self.loaded_at = time.time()
        self.metrics.model_ready.set(1)

    def load(self):
        from soritune.infer import load_backend

        c = self.config
        if speech_llm_dir(c.model) is not None:  # a speech-LLM run: chat completions + transcriptions
            return SpeechLLMBackend.load(c.model, device=c.device)
        backend = load_backend(c.model, backend=c.backend, adapter=c.adapter, device=c.device,
                               compute_type=c.compute_type, encoder_input=c.encoder_input)
        if c.gate != "off":  # refuse: raises, so loading fails and the server stops with the reason
            from soritune.eval.hallucination import gate_backend

            report, warning = gate_backend(backend, c.gate, c.gate_thresholds, what=c.model_id, language=c.language,
                                           max_new_tokens=c.max_new_tokens, batch_size=c.max_batch,
                                           encoder_input=c.encoder_input)
            self.gate = {"mode": c.gate, **report.gate, "warning": warning}
            if warning:
                log.warning(warning)
        if self.closing and hasattr(backend, "close"):  # the server stopped while this was loading
            backend.close()
        return backend

    def run_batch(self, audios, key: str, task: str, contexts=None):
        """key: the clips' DecodeOptions as JSON (serve/stream.py), or a bare language code; contexts: the
        clips' previous-text prompts (condition_on_previous_text, serve.pipeline.submit_in_order)."""
        options = (DecodeOptions.model_validate_json(key) if key.startswith("{") else
                   DecodeOptions(language=key, max_new_tokens=self.config.max_new_tokens))
        decode = getattr(self.backend, "decode", None)
        if decode is None:  # a backend with only the greedy interface (vosk, test doubles)
            return self.backend.transcribe(audios, language=options.language or self.config.language, task=task,
                                           batch_size=len(audios), max_new_tokens=options.max_new_tokens)
        extra = {"contexts": contexts} if contexts else {}
        return decode(audios, options.model_copy(update={"task": task, "batch_size": len(audios)}), **extra)

    def describe(self) -> dict:
        try:
            return dict(self.backend.describe()) if self.backend is not None else {}
        except Exception:  # noqa: BLE001 - reporting only
            return {}


def model_languages(backend) -> dict[str, str]:
    """Whisper language code -> English name, limited to the tokens the model's tokenizer has."""
    from transformers.models.whisper.tokenization_whisper import LANGUAGES

    tok = getattr(getattr(backend, "processor", None), "tokenizer", None)
    if tok is None:
        return dict(LANGUAGES)
    unk = getattr(tok, "unk_token_id", None)
    return {c: n for c, n in LANGUAGES.items() if tok.convert_tokens_to_ids(f"<|{c}|>") not in (None, unk)}


def create_app(config: ServeConfig, backend=None, *, on_load_error=None):
    """The FastAPI app. Pass a loaded `backend` to skip loading (tests); else it loads after start-up.

    on_load_error(message) is called if background loading fails (the CLI uses it to stop the server).
    """
    state = ServerState(config, backend, on_load_error)

    @asynccontextmanager
    async def lifespan(app):
        state.batcher = MicroBatcher(
            state.run_batch, max_batch=config.max_batch, window_ms=config.batch_window_ms,
            on_batch=lambda n, _s: state.metrics.batch_size.observe(n),
            on_queue=state.metrics.queue_depth.set)
        state.batcher.start()
        state.decode_slots = asyncio.Semaphore(config.max_concurrent_decodes)
        state.drain_expired = asyncio.Event()
        loader = None
        if backend is not None:
            state.mark_ready(backend)
        else:
            loader = asyncio.create_task(_load(state))
        try:
            yield
        finally:
            if loader is not None:
                loader.cancel()
            await state.batcher.stop()
            state.close_backend()

    app = FastAPI(title="soritune", version=_version(), lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.serve = state
    app.state.metrics = state.metrics
    install_error_handlers(app)
    static_dir = resources.files("soritune.serve") / "static"
    app.mount("/static", StaticFiles(directory=str(static_dir)), name="static")

    @app.middleware("http")
    async def count_requests(request: Request, call_next):
        response = await call_next(request)
        path = request.url.path
        route = path if path in ROUTES else ("/static" if path.startswith("/static/") else
                                              "/v1/models/{id}" if path.startswith("/v1/models/") else "other")
        state.metrics.requests.inc(route=route, status=str(response.status_code))
        return response

    @app.get("/", include_in_schema=False)
    async def index():
        return FileResponse(str(static_dir / "index.html"), media_type="text/html; charset=utf-8")

    @app.get("/health")
    async def health(request: Request):
        if config.api_key is not None and not _has_key(request, config):
            status = "ok" if state.ready else "error" if state.load_error else "loading"
            return JSONResponse({"status": status, "auth": True}, status_code=200 if state.ready else 503)
        body = {"model": config.model_id, "auth": config.api_key is not None, "max_upload_mb": config.max_upload_mb,
                "max_batch": config.max_batch, "default_language": config.language}
        if state.ready:
            return {"status": "ok", **body, "backend": state.describe(),
                    **({"hallucination_gate": state.gate} if state.gate else {})}
        if state.load_error:
            return JSONResponse({"status": "error", "error": state.load_error, **body}, status_code=503)
        return JSONResponse({"status": "loading", **body}, status_code=503, headers={"Retry-After": "2"})

    @app.get("/metrics", include_in_schema=False)
    async def metrics():
        return Response(state.metrics.render(), media_type=CONTENT_TYPE)

    @app.get("/v1/models")
    async def list_models(request: Request):
        _check_auth(request, config)
        return {"object": "list", "data": [_model_card(state)]}

    @app.get("/v1/models/{model_id:path}")
    async def get_model(model_id: str, request: Request):
        _check_auth(request, config)
        if model_id != config.model_id:
            raise ApiError(404, f"the model {model_id!r} does not exist; this server serves {config.model_id!r}",
                           param="model", code="model_not_found")
        return _model_card(state)

    @app.post("/v1/audio/transcriptions")
    async def transcriptions(request: Request):
        return await _transcribe(request, state, "transcribe")

    @app.post("/v1/audio/translations")
    async def translations(request: Request):
        return await _transcribe(request, state, "translate")

    install_chat_routes(app, state, _check_auth)

    return app


async def _load(state: ServerState) -> None:
    t0 = time.perf_counter()
    try:
        backend = await asyncio.to_thread(state.load)
        state.mark_ready(backend)
        log.info("model %s ready in %.1f s", state.config.model, time.perf_counter() - t0)
    except asyncio.CancelledError:
        raise
    except Exception as e:  # noqa: BLE001 - reported on /health and to the CLI
        from soritune.errors import SoritunError

        state.load_error = str(e) if isinstance(e, SoritunError) else f"{type(e).__name__}: {e}"
        log.error("loading %s failed: %s", state.config.model, state.load_error)
        if state.on_load_error:
            state.on_load_error(state.load_error)


def _has_key(request, config: ServeConfig) -> bool:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(), config.api_key.encode())


def _check_auth(request, config: ServeConfig) -> None:
    if config.api_key is None:
        return
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if not header:
        raise ApiError(401, "you didn't provide an API key: send `Authorization: Bearer KEY`",
                       code="missing_api_key", headers={"WWW-Authenticate": "Bearer"})
    if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), config.api_key.encode()):
        raise ApiError(401, "incorrect API key provided", code="invalid_api_key",
                       headers={"WWW-Authenticate": "Bearer"})


def _model_card(state: ServerState) -> dict:
    return {"id": state.config.model_id, "object": "model", "created": int(state.loaded_at or time.time()),
            "owned_by": "soritune", "ready": state.ready, "spec": state.config.model,
            "backend": state.config.backend, "languages": sorted(state.languages)}


async def _transcribe(request: Request, state: ServerState, task: str):
    from soritune.serve import formats
    from soritune.serve.pipeline import ClientGone, guard, transcribe_upload
    from soritune.serve.request import parse_transcription_form, read_form, resolve_language
    from soritune.serve.stream import request_options, stream_events, transcribe_request

    config, metrics = state.config, state.metrics
    _check_auth(request, config)
    t0 = time.perf_counter()
    metrics.in_flight.add(1)
    try:
        form = await read_form(request, config.max_upload_bytes)
        params = await parse_transcription_form(form, config.max_upload_bytes)
        if not state.ready:
            raise ApiError(503, f"model not ready: {state.load_error}" if state.load_error else
                           "the model is still loading; retry shortly (see GET /health)",
                           code="model_not_ready", headers={"Retry-After": "2"})
        if state.draining:
            raise ApiError(503, "the server is shutting down; retry on another instance", code="server_shutting_down",
                           type="server_error", headers={"Retry-After": "5"})
        language = resolve_language(params.language, state.languages, config.language)
        options = request_options(config.decode, language=language, task=task, max_new_tokens=config.max_new_tokens,
                                  prompt=params.prompt, temperature=params.temperature, words=params.words,
                                  diarize=params.diarize)
        if params.stream:
            return StreamingResponse(stream_events(
                params.data, params.filename, state.batcher, options, task=task, diarize=params.diarize,
                max_audio_s=config.max_audio_s, on_done=metrics.audio_s.inc, decode_slots=state.decode_slots,
                max_queued_chunks=config.max_chunks_per_request), media_type="text/event-stream")
        try:
            if options.vad or params.diarize == "channels" or options.language is None:  # planned whole
                work = transcribe_request(params.data, params.filename, state.batcher, options, task=task,
                                          diarize=params.diarize, max_audio_s=config.max_audio_s,
                                          decode_slots=state.decode_slots,
                                          max_queued_chunks=config.max_chunks_per_request)
            else:  # streamed in blocks: memory does not grow with the upload
                work = transcribe_upload(params.data, params.filename, state.batcher, language=language, task=task,
                                         max_audio_s=config.max_audio_s, decode_slots=state.decode_slots,
                                         max_queued_chunks=config.max_chunks_per_request, options=options)
            result = await guard(work, receive=request.receive, deadline_s=config.request_timeout_s,
                                 drain_expired=state.drain_expired)
        except ClientGone:
            return Response(status_code=499)  # nginx's "client closed request": nobody reads it
        except ApiError:
            raise
        except Exception as e:  # noqa: BLE001 - the model failed on this clip; the server goes on
            log.exception("transcription failed")
            raise ApiError(500, f"transcription failed: {type(e).__name__}: {e}", code="transcription_failed",
                           type="server_error") from None
    finally:
        metrics.in_flight.add(-1)
    total_ms = (time.perf_counter() - t0) * 1000
    metrics.latency.observe(total_ms / 1000)
    metrics.audio_s.inc(result.duration_s)
    fmt = params.response_format
    if fmt == "json":
        return JSONResponse(formats.to_json(result.text, result.duration_s))
    if fmt == "text":
        return PlainTextResponse(formats.to_text(result.text))
    if fmt == "srt":
        return PlainTextResponse(formats.to_srt(result.segments))
    if fmt == "vtt":
        return PlainTextResponse(formats.to_vtt(result.segments))
    extra = {
        "model": config.model_id,
        "backend": state.describe(),
        "decoding": {**options.describe(), "temperature_requested": params.temperature,
                     "prompt_used": bool(options.initial_prompt)},
        "timings_ms": {"decode": round(result.decode_ms, 1), "queue": round(result.queue_ms, 1),
                       "inference": round(result.inference_ms, 1), "total": round(total_ms, 1)},
        "batch_sizes": result.batch_sizes,
        "rtfx": round(result.duration_s / (total_ms / 1000), 2) if total_ms > 0 else None,
    }
    # like the hosted API: verbose_json names the output language in full ("korean"; "english" for translate)
    language = result.language or language
    out_language = "english" if task == "translate" else state.languages.get(language, language)
    return JSONResponse(formats.to_verbose_json(result.text, result.segments, language=out_language,
                                                duration_s=result.duration_s, task=task, extra=extra,
                                                words=params.words))


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("soritune")
    except Exception:  # noqa: BLE001
        return "0"
