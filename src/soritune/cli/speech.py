"""`soritune say`: synthesise Korean speech to a WAV file (offline: espeak-ng or Kokoro)."""

from __future__ import annotations

from pathlib import Path

import typer

from soritune.cli.app import app, out


@app.command()
def say(
    text: str = typer.Argument(..., help="Text to speak. espeak voices: Hangul (digits and Latin read by espeak-ng's "
                               "rules). kokoro voices: a Hangul reading only (write 3 as 삼, GPU as 지피유)."),
    out_path: Path = typer.Option(Path("sample.wav"), "--out", "-o", help="WAV file to write (16 kHz mono)."),
    voice: str = typer.Option("ko", help="BACKEND:VOICE. espeak (bare names): ko, ko-m1, ko-m2, ko-m3, ko-m6, ko-f1, "
                              "ko-f2, ko-f4, ko-belinda, ko-steph, en. kokoro: kokoro:jf_alpha, kokoro:jf_gongitsune, "
                              "kokoro:jf_nezumi, kokoro:jf_tebukuro, kokoro:jm_kumo, or a blend such as "
                              "kokoro:jf_alpha+jm_kumo or kokoro:jf_alpha*0.7+jm_kumo*0.3."),
    rate: int = typer.Option(150, min=80, max=450, help="espeak: words per minute."),
    pitch: int = typer.Option(50, min=0, max=100, help="espeak: base pitch 0-100."),
    speed: float = typer.Option(1.0, min=0.5, max=2.0, help="kokoro: tempo factor (1.0 = the voice's own)."),
) -> None:
    """Speak TEXT with a bundled Korean voice and write a 16 kHz WAV (deterministic).

    espeak-ng is robotic and fast; Kokoro-82M (int8 ONNX, `soritune[speech]`) sounds natural and runs
    about real time on one core. Kokoro clips are cached under the soritune cache dir.

    Example: soritune say "오늘은 미분 방정식을 배우겠습니다." --out sample.wav
    Example: soritune say "오늘은 미분 방정식을 배우겠습니다." --voice kokoro:jm_kumo --speed 1.1 --out kumo.wav
    """
    from soritune.audio import SAMPLE_RATE, write_wav
    from soritune.data.tts import speak

    audio = speak(text, voice, rate_wpm=rate, pitch=pitch, speed=speed, threads=2)
    write_wav(out_path, audio)
    out.print(f"wrote {out_path} ({len(audio) / SAMPLE_RATE:.2f} s)", highlight=False)
