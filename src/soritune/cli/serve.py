"""`soritune serve`: an OpenAI-compatible transcription server with a web page."""

from __future__ import annotations

from pathlib import Path

import typer

from soritune.cli.app import app, console
from soritune.models.encoder import ENCODER_INPUT_HELP


@app.command()
def serve(
    model: str = typer.Option("bundled:whisper-base", "--model", "-m", help="Model spec (see `soritune --help`)."),
    adapter: Path | None = typer.Option(None, help="PEFT LoRA/DoRA adapter directory, merged at load."),
    backend: str = typer.Option("torch", help="torch | ct2 (CTranslate2, faster on CPU)."),
    host: str = typer.Option("127.0.0.1", help="Interface to listen on (0.0.0.0 exposes it to the network)."),
    port: int = typer.Option(8000, min=0, max=65535, help="TCP port."),
    api_key: str | None = typer.Option(
        None, envvar="SORITUNE_API_KEY", help="Require `Authorization: Bearer KEY` on /v1/* (env SORITUNE_API_KEY)."),
    max_upload_mb: float = typer.Option(25.0, min=0.001, help="Largest accepted upload in MB (OpenAI's limit); larger gets 413."),
    max_batch: int = typer.Option(8, min=1, max=256, help="Most clips per model call; 1 turns micro-batching off."),
    batch_window_ms: float = typer.Option(20.0, min=0, max=5000, help="How long a clip waits for batch mates."),
    max_new_tokens: int = typer.Option(225, min=1, max=440, help="Token limit per <= 30 s chunk."),
    language: str = typer.Option("ko", help="Language for requests that name none (never auto-detected)."),
    device: str = typer.Option("cpu", help="cpu | cuda."),
    compute_type: str | None = typer.Option(None, help="torch: float32|float16|bfloat16; ct2: float32|int8|..."),
    encoder_input: str = typer.Option("padded", help=ENCODER_INPUT_HELP),
    model_name: str | None = typer.Option(None, help="Model id shown by /v1/models (default: the spec)."),
    log_level: str = typer.Option("info", help="uvicorn log level: debug | info | warning | error."),
    max_concurrent_decodes: int = typer.Option(2, min=1, max=64, help="Audio blocks decoded at once, all requests together."),
    max_chunks_per_request: int = typer.Option(2, min=1, max=256, help="Most 30-s chunks of one request at the model at once."),
    request_timeout_s: float = typer.Option(1800.0, min=1, help="A transcription running longer gets 504; its queued work is dropped."),
    shutdown_grace_s: float = typer.Option(30.0, min=0, max=3600, help="On SIGTERM, time running requests get to finish before a 503."),
    header_timeout_s: float = typer.Option(10.0, min=0.1, help="Close connections that take longer to send a request's headers."),
    read_timeout_s: float = typer.Option(30.0, min=0.1, help="Close a request whose body stalls this long."),
    gate: str = typer.Option("off", help="off | warn | refuse: run the hallucination suite on the model once loaded "
                                         "and warn, or refuse to serve, above its thresholds."),
    gate_threshold: list[str] | None = typer.Option(
        None, "--gate-threshold", help="METRIC=VALUE (repeatable; null skips one), e.g. loop_rate=0.2; metrics: "
                                       "nonspeech_chars_per_min, pause_chars_per_min, nonspeech_output_rate, loop_rate, speech_missed."),
    vad: bool = typer.Option(False, "--vad", help="Silero VAD: decode only speech, cut chunks at pauses."),
    long_form: bool = typer.Option(False, "--long-form", help="Decode with DecodeOptions.long_form(): VAD, beam 5, "
                                   "temperature fallback, timestamps (requests still set prompt, words, stream)."),
    condition_on_previous_text: bool = typer.Option(False, "--condition-on-previous-text",
                                                    help="Prompt each chunk with the text of the one before it."),
) -> None:
    """Serve a model over HTTP: OpenAI-compatible POST /v1/audio/transcriptions (json, text, srt, vtt,
    verbose_json), GET /v1/models, /health (ready once the model is loaded), /metrics (Prometheus)
    and a web page at / to upload or record audio. Concurrent requests are micro-batched onto the
    model; audio longer than 30 s is cut at pauses. Needs the extra: pip install 'soritune[serve]'.

    Example: soritune serve --model bundled:whisper-base --backend ct2 --port 8000 --long-form

    Requests may add prompt, timestamp_granularities[]=word, stream=true (server-sent events) and
    diarize=channels (a stereo call: agent on channel 1, customer on channel 2).

    Example: soritune serve --model ct2:export/ct2 --backend ct2 --gate refuse --gate-threshold loop_rate=0.05

    Then: OpenAI(base_url="http://127.0.0.1:8000/v1", api_key="x").audio.transcriptions.create(
    model="whisper-1", file=open("a.wav", "rb"), language="ko")
    """
    from soritune.cli.app import fail

    try:
        import fastapi  # noqa: F401
        import multipart  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as e:
        fail(f"serving needs the serve extra ({e.name} is missing): pip install 'soritune[serve]'")
    from soritune.config import apply_overrides, validate
    from soritune.infer.options import DecodeOptions
    from soritune.models.specs import parse_spec
    from soritune.serve.app import ServeConfig
    from soritune.serve.runner import serve as run_server

    if backend not in ("torch", "ct2"):
        fail(f"--backend must be torch or ct2, got {backend!r}")
    parse_spec(model)  # a bad spec fails now, in one line, not after the server started
    if adapter is not None and not adapter.is_dir():
        fail(f"--adapter {adapter}: not a directory")
    config = validate(ServeConfig, dict(
        model=model, adapter=str(adapter) if adapter else None, backend=backend, host=host, port=port,
        api_key=api_key, max_upload_mb=max_upload_mb, max_batch=max_batch, batch_window_ms=batch_window_ms,
        max_new_tokens=max_new_tokens, language=language, device=device, compute_type=compute_type,
        encoder_input=encoder_input, model_name=model_name, max_concurrent_decodes=max_concurrent_decodes,
        request_timeout_s=request_timeout_s, max_chunks_per_request=max_chunks_per_request, shutdown_grace_s=shutdown_grace_s, header_timeout_s=header_timeout_s,
        read_timeout_s=read_timeout_s,
        gate=gate, gate_thresholds=apply_overrides({}, gate_threshold),
        decode=(DecodeOptions.long_form() if long_form else DecodeOptions()).model_copy(update={"vad": vad or long_form, "condition_on_previous_text": condition_on_previous_text or long_form})))
    if host not in ("127.0.0.1", "localhost", "::1") and not api_key:
        console.print(f"[yellow]warning:[/] listening on {host} without --api-key: anyone who can reach it "
                      "can use it", highlight=False)
    shown = f"[{host}]" if ":" in host else host
    console.print(f"soritune serving {model} ({backend}) on http://{shown}:{port}  web page: /  API: /v1  "
                  f"micro-batching: {'off' if max_batch == 1 else f'up to {max_batch}, {batch_window_ms:g} ms window'}"
                  f"; the model loads in the background (GET /health says when it is ready)", highlight=False)
    error = run_server(config, log_level=log_level)
    if error:
        fail(f"loading {model} failed: {error}")
