"""Korean speech synthesis with libespeak-ng from the `espeakng-loader` wheel (no system packages).

`speak(text)` returns 16 kHz mono float32, identical for identical arguments (see espeak_worker.py
for how), so a synthetic corpus is reproducible from a seed.
"""

from __future__ import annotations

import atexit
import json
import struct
import subprocess
import sys
import threading

import numpy as np

from soritune.audio import SAMPLE_RATE, resample
from soritune.errors import SoritunError

# Speaker voices: the Korean voice with espeak-ng's speaker variants.
VOICES = {
    "ko": "ko", "ko-m1": "ko+m1", "ko-m2": "ko+m2", "ko-m3": "ko+m3", "ko-m6": "ko+m6",
    "ko-f1": "ko+f1", "ko-f2": "ko+f2", "ko-f4": "ko+f4", "ko-belinda": "ko+belinda", "ko-steph": "ko+steph",
    "en": "en",  # English, for tests whose transcripts must be exact (zero-shot Whisper reads it well)
}

_lock = threading.Lock()
_proc: subprocess.Popen | None = None


def _worker() -> subprocess.Popen:
    global _proc
    if _proc is None or _proc.poll() is not None:
        try:
            import espeakng_loader  # noqa: F401
        except ImportError as e:  # pragma: no cover - core dependency
            raise SoritunError("Korean synthesis needs the 'espeakng-loader' package: pip install espeakng-loader") from e
        _proc = subprocess.Popen(
            [sys.executable, "-m", "soritune.data.espeak_worker"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        )
        atexit.register(_stop)
    return _proc


def _stop() -> None:
    global _proc
    if _proc is not None and _proc.poll() is None:
        _proc.stdin.close()
        _proc.wait(timeout=5)
    _proc = None


def _read(stream, n: int) -> bytes:
    buf = stream.read(n)
    if buf is None or len(buf) != n:
        raise SoritunError("the espeak-ng worker process stopped unexpectedly")
    return buf


def speak(
    text: str,
    voice: str = "ko",
    rate: int = 165,
    pitch: int = 50,
    pitch_range: int = 50,
    lead_silence_s: float = 0.2,
    tail_silence_s: float = 0.3,
) -> np.ndarray:
    """Synthesise `text` and return 16 kHz mono float32.

    voice: one of VOICES (Korean, different speakers); rate: words per minute (80-450);
    pitch and pitch_range: 0-100. Deterministic for equal arguments.
    """
    if not text or not text.strip():
        raise SoritunError("speak(): text is empty")
    if voice not in VOICES:
        raise SoritunError(f"speak(): unknown voice {voice!r}; choose one of {', '.join(VOICES)}")
    if not 80 <= rate <= 450:
        raise SoritunError(f"speak(): rate must be 80-450 words per minute, got {rate}")
    if not (0 <= pitch <= 100 and 0 <= pitch_range <= 100):
        raise SoritunError(f"speak(): pitch and pitch_range must be 0-100, got {pitch}, {pitch_range}")
    req = json.dumps({"text": text, "voice": VOICES[voice], "rate": rate, "pitch": pitch, "range": pitch_range}).encode()
    with _lock:
        proc = _worker()
        proc.stdin.write(struct.pack("<I", len(req)) + req)
        proc.stdin.flush()
        sr, status, length = struct.unpack("<III", _read(proc.stdout, 12))
        payload = _read(proc.stdout, length) if length else b""
    if status != 0:
        raise SoritunError(f"speak(): {payload.decode('utf-8', 'replace')}")
    audio = np.frombuffer(payload, dtype="<i2").astype(np.float32) / 32768.0
    audio = resample(audio, sr, SAMPLE_RATE)
    lead = np.zeros(int(lead_silence_s * SAMPLE_RATE), dtype=np.float32)
    tail = np.zeros(int(tail_silence_s * SAMPLE_RATE), dtype=np.float32)
    return np.concatenate([lead, audio, tail])
