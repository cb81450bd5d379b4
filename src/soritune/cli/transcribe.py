"""`soritune transcribe`: files in, text/JSON/SRT/VTT out."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from soritune.cli.app import app, console, out
from soritune.models.encoder import ENCODER_INPUT_HELP


@app.command()
def transcribe(
    audio: List[Path] = typer.Argument(..., help="Audio files (wav, flac, ogg, mp3, m4a, webm, headerless .pcm at 16 kHz)."),
    model: str = typer.Option("bundled:whisper-base", "--model", "-m", help="Model spec (see `soritune --help`)."),
    adapter: Optional[Path] = typer.Option(None, help="PEFT LoRA/DoRA adapter directory to apply (e.g. RUN_DIR/adapter)."),
    language: str = typer.Option("ko", help="Whisper language code; forced, never auto-detected."),
    task: str = typer.Option("transcribe", help="transcribe | translate (to English)."),
    backend: str = typer.Option("torch", help="torch | ct2 (CTranslate2, faster on CPU)."),
    batch_size: int = typer.Option(8, min=1, help="Clips (30-s chunks) decoded together."),
    encoder_input: str = typer.Option("padded", help=ENCODER_INPUT_HELP),
    format: str = typer.Option("txt", "--format", "-f", help="txt | json | srt | vtt."),
    output_dir: Optional[Path] = typer.Option(None, help="Write <name>.<format> per file here instead of printing."),
    max_new_tokens: int = typer.Option(224, min=1, max=224, help="Token limit per 30-s chunk (Whisper's own limit is 224)."),
) -> None:
    """Transcribe audio files with greedy decoding. Audio longer than 30 s is cut at pauses into
    chunks, so no word is lost or doubled at the seams; srt/vtt carry one cue per chunk.

    Example: soritune transcribe lecture.wav --model bundled:whisper-base --language ko -f srt
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    from soritune.cli.app import fail
    from soritune.infer import load_backend
    from soritune.infer.formats import FORMATS, render
    from soritune.infer.transcribe import transcribe_files

    if format not in FORMATS:
        fail(f"--format must be one of {', '.join(FORMATS)}, got {format!r}")
    if task not in ("transcribe", "translate"):
        fail(f"--task must be transcribe or translate, got {task!r}")
    with console.status(f"loading {model} ({backend})"):
        be = load_backend(model, backend=backend, adapter=str(adapter) if adapter else None,
                          encoder_input=encoder_input)
    with Progress("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=console, transient=True) as bar:
        t = bar.add_task("transcribing", total=None)
        summary = transcribe_files(
            [str(p) for p in audio], be, language=language, task=task, batch_size=batch_size,
            max_new_tokens=max_new_tokens, on_chunks=lambda n: bar.update(t, total=n),
            progress=lambda n: bar.advance(t, n))
    for r in summary.files:
        if not r.ok:
            console.print(f"[red]failed[/] {r.path}: {r.error}" + (f" ({r.detail})" if r.detail else ""), highlight=False)
            continue
        body = render(format, r.text, r.segments, {"path": r.path, "duration_s": round(r.duration_s, 3)})
        if output_dir:
            output_dir.mkdir(parents=True, exist_ok=True)
            dest = output_dir / f"{Path(r.path).stem}.{format}"
            dest.write_text(body, encoding="utf-8")
        elif len(audio) > 1 and format == "txt":
            out.print(f"{r.path}\t{r.text}", highlight=False, markup=False, soft_wrap=True)
        else:
            out.print(body, end="", highlight=False, markup=False, soft_wrap=True)
    ok = len(summary.files) - summary.n_failed
    console.print(f"{ok} transcribed, {summary.n_failed} failed; {summary.audio_s:.1f} s of audio in "
                  f"{summary.wall_s:.1f} s (RTFx {summary.rtfx:.1f})", highlight=False)
    if summary.n_failed:
        raise typer.Exit(1)
