"""`soritune transcribe`: files in, text/JSON/SRT/VTT out, decoded with one `DecodeOptions`."""

from __future__ import annotations

from pathlib import Path

import typer

from soritune.cli.app import app, console, out
from soritune.cli.options import config_options
from soritune.cli.progress import progress_bar
from soritune.infer.options import DecodeOptions
from soritune.serve.config import ServeConfig

# The model reference (spec, adapter, backend, device, dtype, encoder input) is declared once, in
# ServeConfig (the same fields serve loads with); decoding is DecodeOptions.
MODEL_FIELDS = ("model", "adapter", "backend", "device", "compute_type", "encoder_input")


@app.command()
@config_options(DecodeOptions, rename={"initial_prompt": "--prompt"}, csv=("temperatures",),
                more=((ServeConfig, {"include": MODEL_FIELDS, "short": {"model": "-m"}}),))
def transcribe(
    fields: dict,
    audio: list[Path] = typer.Argument(..., help="Audio files (wav, flac, ogg, mp3, m4a, webm, headerless .pcm at 16 kHz)."),
    format: str = typer.Option("txt", "--format", "-f", help="txt | json | srt | vtt."),
    output_dir: Path | None = typer.Option(None, help="Write <name>.<format> per file here instead of printing."),
    long_form: bool = typer.Option(False, "--long-form", help="The recommended long-recording setting: VAD, beam 5, "
                                   "temperature fallback, timestamps (DecodeOptions.long_form()); flags given override it."),
    diarize: str = typer.Option("none", help="none | channels: a stereo call split by channel into turns "
                                "of `agent` (channel 1) and `customer` (channel 2), merged by time."),
    set_: list[str] | None = typer.Option(None, "--set", help="Any DecodeOptions field, e.g. --set no_speech_threshold=0.5."),
) -> None:
    """Transcribe audio files. Audio longer than 30 s is cut into chunks at pauses (with --vad at the
    pauses Silero VAD finds, non-speech skipped). JSON is {"text", "segments": [{"start", "end", "text",
    "words": [{"start", "end", "word"}], ...}]}, times in seconds from the start of the file.

    Example: soritune transcribe lecture.wav --vad --word-timestamps -f json --output-dir out/

    Example: soritune transcribe call.wav --diarize channels --language ko -f srt
    """
    from soritune.cli.app import fail
    from soritune.config import apply_overrides, validate
    from soritune.infer import load_backend
    from soritune.infer.formats import FORMATS, render
    from soritune.infer.transcribe import DIARIZE, transcribe_files

    if format not in FORMATS:
        fail(f"--format must be one of {', '.join(FORMATS)}, got {format!r}")
    if diarize not in DIARIZE:
        fail(f"--diarize must be one of {', '.join(DIARIZE)}, got {diarize!r}")
    ref = validate(ServeConfig, {k: v for k, v in fields.items() if k in MODEL_FIELDS})
    base = DecodeOptions.long_form().model_dump() if long_form else {}
    decode = {k: v for k, v in fields.items() if k not in MODEL_FIELDS}
    options = validate(DecodeOptions, apply_overrides({**base, **decode}, set_))
    with console.status(f"loading {ref.model} ({ref.backend})"):
        be = load_backend(ref.model, backend=ref.backend, adapter=ref.adapter, device=ref.device,
                          compute_type=ref.compute_type, encoder_input=ref.encoder_input)
    with progress_bar("transcribing") as bar:
        summary = transcribe_files([str(p) for p in audio], be, options, diarize=diarize,
                                   on_chunks=lambda n: bar.update(total=n), progress=bar.advance)
    for r in summary.files:
        if not r.ok:
            console.print(f"[red]failed[/] {r.path}: {r.error}" + (f" ({r.detail})" if r.detail else ""), highlight=False)
            continue
        body = render(format, r.text, r.segments, {"path": r.path, "duration_s": round(r.duration_s, 3),
                                                   "language": r.language})
        if output_dir:
            output_dir.mkdir(parents=True, exist_ok=True)
            dest = output_dir / f"{Path(r.path).stem}.{format}"
            dest.write_text(body, encoding="utf-8")
        elif len(audio) > 1 and format == "txt" and diarize == "none":
            out.print(f"{r.path}\t{r.text}", highlight=False, markup=False, soft_wrap=True)
        else:
            out.print(body, end="", highlight=False, markup=False, soft_wrap=True)
    ok = len(summary.files) - summary.n_failed
    console.print(f"{ok} transcribed, {summary.n_failed} failed; {summary.audio_s:.1f} s of audio in "
                  f"{summary.wall_s:.1f} s (RTFx {summary.rtfx:.1f})", highlight=False)
    if summary.n_failed:
        raise typer.Exit(1)
