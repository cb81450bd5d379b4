"""`soritune say`: synthesise Korean speech to a WAV file (offline, libespeak-ng)."""

from __future__ import annotations

from pathlib import Path

import typer

from soritune.cli.app import app, out


@app.command()
def say(
    text: str = typer.Argument(..., help="Text to speak (Hangul; digits and Latin are read by espeak-ng's rules)."),
    out_path: Path = typer.Option(Path("sample.wav"), "--out", "-o", help="WAV file to write (16 kHz mono)."),
    voice: str = typer.Option("ko", help="Speaker voice: ko, ko-m1, ko-m2, ko-m3, ko-m6, ko-f1, ko-f2, ko-f4, ko-belinda, ko-steph, en."),
    rate: int = typer.Option(150, min=80, max=450, help="Words per minute."),
    pitch: int = typer.Option(50, min=0, max=100, help="Base pitch 0-100."),
) -> None:
    """Speak TEXT with the bundled Korean voice and write a 16 kHz WAV (deterministic).

    Example: soritune say "오늘은 미분 방정식을 배우겠습니다." --out sample.wav
    """
    from soritune.audio import SAMPLE_RATE, write_wav
    from soritune.data.synth import speak

    audio = speak(text, voice=voice, rate=rate, pitch=pitch)
    write_wav(out_path, audio)
    out.print(f"wrote {out_path} ({len(audio) / SAMPLE_RATE:.2f} s)", highlight=False)
