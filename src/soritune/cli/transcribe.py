"""`soritune transcribe`: files in, text/JSON/SRT/VTT out, decoded with one `DecodeOptions`."""

from __future__ import annotations

from pathlib import Path

import typer

from soritune.cli.app import app, console, out
from soritune.infer.options import DecodeOptions
from soritune.models.encoder import ENCODER_INPUT_HELP


def _help(name: str) -> str:
    """A flag's help is its DecodeOptions field description (declared once)."""
    return DecodeOptions.model_fields[name].description


@app.command()
def transcribe(
    audio: list[Path] = typer.Argument(..., help="Audio files (wav, flac, ogg, mp3, m4a, webm, headerless .pcm at 16 kHz)."),
    model: str = typer.Option("bundled:whisper-base", "--model", "-m", help="Model spec (see `soritune --help`)."),
    adapter: Path | None = typer.Option(None, help="PEFT LoRA/DoRA adapter directory to apply (e.g. RUN_DIR/adapter)."),
    language: str = typer.Option("ko", help="Whisper language code, or `auto` to detect it per file."),
    task: str = typer.Option("transcribe", help="transcribe | translate (to English)."),
    backend: str = typer.Option("torch", help="torch | ct2 (CTranslate2, faster on CPU)."),
    batch_size: int = typer.Option(8, min=1, help=_help("batch_size")),
    encoder_input: str = typer.Option("padded", help=ENCODER_INPUT_HELP),
    format: str = typer.Option("txt", "--format", "-f", help="txt | json | srt | vtt."),
    output_dir: Path | None = typer.Option(None, help="Write <name>.<format> per file here instead of printing."),
    max_new_tokens: int | None = typer.Option(None, help=_help("max_new_tokens") + " [default: 224]"),
    vad: bool = typer.Option(False, "--vad", help=_help("vad")),
    long_form: bool = typer.Option(False, "--long-form", help="The recommended long-recording setting: VAD, beam 5, "
                                   "temperature fallback, timestamps (DecodeOptions.long_form())."),
    beam_size: int | None = typer.Option(None, help=_help("beam_size") + " [default: 1]"),
    temperatures: str | None = typer.Option(None, help="Temperature fallback ladder, e.g. 0,0.2,0.4,0.6,0.8,1 [default: 0]."),
    initial_prompt: str | None = typer.Option(None, "--prompt", help=_help("initial_prompt")),
    hotwords: str | None = typer.Option(None, help=_help("hotwords")),
    condition_on_previous_text: bool = typer.Option(False, "--condition-on-previous-text", help=_help("condition_on_previous_text")),
    timestamps: bool = typer.Option(False, "--timestamps", help=_help("timestamps")),
    word_timestamps: bool = typer.Option(False, "--word-timestamps", help=_help("word_timestamps")),
    diarize: str = typer.Option("none", help="none | channels: a stereo call split by channel into turns "
                                "of `agent` (channel 1) and `customer` (channel 2), merged by time."),
    set_: list[str] | None = typer.Option(None, "--set", help="Any other DecodeOptions field, e.g. --set no_speech_threshold=0.5."),
) -> None:
    """Transcribe audio files. Audio longer than 30 s is cut into chunks at pauses (with --vad at the
    pauses Silero VAD finds, non-speech skipped). JSON is {"text", "segments": [{"start", "end", "text",
    "words": [{"start", "end", "word"}], ...}]}, times in seconds from the start of the file.

    Example: soritune transcribe lecture.wav --vad --word-timestamps -f json --output-dir out/

    Example: soritune transcribe call.wav --diarize channels --language ko -f srt
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    from soritune.cli.app import fail
    from soritune.config import apply_overrides, validate
    from soritune.infer import load_backend
    from soritune.infer.formats import FORMATS, render
    from soritune.infer.options import parse_temperatures
    from soritune.infer.transcribe import DIARIZE, transcribe_files

    if format not in FORMATS:
        fail(f"--format must be one of {', '.join(FORMATS)}, got {format!r}")
    if diarize not in DIARIZE:
        fail(f"--diarize must be one of {', '.join(DIARIZE)}, got {diarize!r}")
    base = DecodeOptions.long_form().model_dump() if long_form else {}
    given = dict(language=language, task=task, batch_size=batch_size, max_new_tokens=max_new_tokens, beam_size=beam_size,
                 temperatures=parse_temperatures(temperatures) if temperatures else None,
                 initial_prompt=initial_prompt, hotwords=hotwords)
    flags = dict(vad=vad, condition_on_previous_text=condition_on_previous_text, timestamps=timestamps,
                 word_timestamps=word_timestamps)
    fields = {**base, **{k: v for k, v in given.items() if v is not None}, **{k: True for k, v in flags.items() if v}}
    options = validate(DecodeOptions, apply_overrides(fields, set_))
    with console.status(f"loading {model} ({backend})"):
        be = load_backend(model, backend=backend, adapter=str(adapter) if adapter else None,
                          encoder_input=encoder_input)
    with Progress("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=console, transient=True) as bar:
        t = bar.add_task("transcribing", total=None)
        summary = transcribe_files(
            [str(p) for p in audio], be, options, diarize=diarize, on_chunks=lambda n: bar.update(t, total=n),
            progress=lambda n: bar.advance(t, n))
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
