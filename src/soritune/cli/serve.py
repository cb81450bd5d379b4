"""`soritune serve`: an OpenAI-compatible transcription server with a web page."""

from __future__ import annotations

from pathlib import Path

import typer

from soritune.cli.app import app, console
from soritune.cli.options import config_options
from soritune.infer.options import DecodeOptions
from soritune.serve.config import ServeConfig


@app.command()
@config_options(ServeConfig, exclude=("gate_thresholds",), short={"model": "-m"},
                extra={"api_key": {"envvar": "SORITUNE_API_KEY"}},
                nested={"decode": (DecodeOptions, {"include": ("vad", "condition_on_previous_text")})})
def serve(
    fields: dict,
    log_level: str = typer.Option("info", help="uvicorn log level: debug | info | warning | error."),
    gate_threshold: list[str] | None = typer.Option(
        None, "--gate-threshold", help="METRIC=VALUE (repeatable; null skips one), e.g. loop_rate=0.2; metrics: "
                                       "nonspeech_chars_per_min, pause_chars_per_min, nonspeech_output_rate, loop_rate, speech_missed."),
    long_form: bool = typer.Option(False, "--long-form", help="Decode with DecodeOptions.long_form(): VAD, beam 5, "
                                   "temperature fallback, timestamps (requests still set prompt, words, stream)."),
    config: Path | None = typer.Option(None, "--config", "-c", help="YAML with ServeConfig fields (flags given override it)."),
    set_: list[str] | None = typer.Option(None, "--set", help="key=value overrides, nested ones too: --set decode.beam_size=5."),
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
    from soritune.config import apply_overrides, read_yaml, validate
    from soritune.models.specs import parse_spec
    from soritune.serve.runner import serve as run_server

    data = read_yaml(config) if config else {}
    decode_flags = fields.pop("decode", {})
    data.update(fields)
    if long_form or decode_flags or "decode" not in data:  # --long-form's base, then the decode flags given
        base = DecodeOptions.long_form().model_dump() if long_form else dict(data.get("decode") or {})
        data["decode"] = {**base, **decode_flags}
    if gate_threshold:
        data["gate_thresholds"] = apply_overrides(dict(data.get("gate_thresholds") or {}), gate_threshold)
    config_ = validate(ServeConfig, apply_overrides(data, set_))
    parse_spec(config_.model)  # a bad spec fails now, in one line, not after the server started
    if config_.adapter is not None and not Path(config_.adapter).is_dir():
        fail(f"--adapter {config_.adapter}: not a directory")
    model, backend, host, port = config_.model, config_.backend, config_.host, config_.port
    api_key, max_batch, batch_window_ms = config_.api_key, config_.max_batch, config_.batch_window_ms
    if host not in ("127.0.0.1", "localhost", "::1") and not api_key:
        console.print(f"[yellow]warning:[/] listening on {host} without --api-key: anyone who can reach it "
                      "can use it", highlight=False)
    shown = f"[{host}]" if ":" in host else host
    console.print(f"soritune serving {model} ({backend}) on http://{shown}:{port}  web page: /  API: /v1  "
                  f"micro-batching: {'off' if max_batch == 1 else f'up to {max_batch}, {batch_window_ms:g} ms window'}"
                  f"; the model loads in the background (GET /health says when it is ready)", highlight=False)
    error = run_server(config_, log_level=log_level)
    if error:
        fail(f"loading {model} failed: {error}")
