"""Decode any audio file to 16 kHz mono float32; headerless PCM; chunking of long audio."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from soritune.errors import AudioError

SAMPLE_RATE = 16000
PCM_SUFFIXES = {".pcm", ".raw"}


def resample(audio: np.ndarray, sr_in: int, sr_out: int = SAMPLE_RATE) -> np.ndarray:
    """Resample mono float32 audio with soxr (high quality)."""
    if sr_in == sr_out:
        return audio.astype(np.float32, copy=False)
    import soxr

    return soxr.resample(audio, sr_in, sr_out, quality="HQ").astype(np.float32, copy=False)


def to_mono(audio: np.ndarray) -> np.ndarray:
    """(samples,) or (samples, channels) -> (samples,) by averaging channels."""
    if audio.ndim == 2:
        audio = audio.mean(axis=1)
    return audio.astype(np.float32, copy=False)


def read_pcm(path: str | Path, sample_rate: int = SAMPLE_RATE, *, target_sr: int = SAMPLE_RATE) -> np.ndarray:
    """Read headerless 16-bit signed little-endian mono PCM.

    An odd byte count is tolerated: `size // 2` samples are read (KsponSpeech eval has such files).
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise AudioError(path, "missing") from None
    except OSError as e:
        raise AudioError(path, "unreadable_audio", str(e)) from None
    n = len(raw) // 2
    if n == 0:
        raise AudioError(path, "empty")
    audio = np.frombuffer(raw[: n * 2], dtype="<i2").astype(np.float32) / 32768.0
    return resample(audio, sample_rate, target_sr)


def _decode_soundfile(data: bytes) -> tuple[np.ndarray, int]:
    import soundfile as sf

    audio, sr = sf.read(io.BytesIO(data), dtype="float32", always_2d=False)
    return to_mono(np.asarray(audio)), int(sr)


def _decode_av(data: bytes) -> tuple[np.ndarray, int]:
    import av

    frames = []
    with av.open(io.BytesIO(data)) as container:
        if not container.streams.audio:
            raise ValueError("no audio stream")
        stream = container.streams.audio[0]
        resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
        for frame in container.decode(stream):
            for out in resampler.resample(frame):
                frames.append(out.to_ndarray().reshape(-1))
        for out in resampler.resample(None):
            frames.append(out.to_ndarray().reshape(-1))
    if not frames:
        return np.zeros(0, dtype=np.float32), SAMPLE_RATE
    return np.concatenate(frames).astype(np.float32), SAMPLE_RATE


def decode_bytes(data: bytes, name: str = "<bytes>", *, target_sr: int = SAMPLE_RATE) -> np.ndarray:
    """Decode an in-memory audio file (any format soundfile or PyAV reads) to mono float32 at target_sr."""
    if not data:
        raise AudioError(name, "empty", "0 bytes")
    for decoder in (_decode_soundfile, _decode_av):
        try:
            audio, sr = decoder(data)
            break
        except Exception:  # noqa: BLE001 - try the next decoder
            continue
    else:
        raise AudioError(name, "not_audio", "no audio decoder recognised the data")
    if audio.size == 0:
        raise AudioError(name, "empty", "no samples decoded")
    if not np.isfinite(audio).all():
        raise AudioError(name, "corrupt", "non-finite samples")
    return resample(audio, sr, target_sr)


def load_audio(path: str | Path, *, target_sr: int = SAMPLE_RATE, pcm_sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Decode wav/flac/ogg/mp3/m4a/webm/... or headerless .pcm to mono float32 at `target_sr`.

    Raises AudioError with reason `missing`, `empty`, `not_audio`, `corrupt` or `unreadable_audio`.
    """
    path = Path(path)
    if path.suffix.lower() in PCM_SUFFIXES:
        return read_pcm(path, pcm_sample_rate, target_sr=target_sr)
    if not path.exists():
        raise AudioError(path, "missing")
    if path.is_dir():
        raise AudioError(path, "unreadable_audio", "is a directory")
    try:
        data = path.read_bytes()
    except OSError as e:
        raise AudioError(path, "unreadable_audio", str(e)) from None
    return decode_bytes(data, str(path), target_sr=target_sr)


def decode_channels(data: bytes, name: str = "<bytes>", *, target_sr: int = SAMPLE_RATE) -> list[np.ndarray]:
    """Decode an in-memory audio file keeping its channels: one float32 array per channel at target_sr
    (soxr high quality, so 8-kHz telephone audio is upsampled without aliasing). Mono gives one array."""
    if not data:
        raise AudioError(name, "empty", "0 bytes")
    try:
        import soundfile as sf

        audio, sr = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
        channels = [np.ascontiguousarray(audio[:, c]) for c in range(audio.shape[1])]
    except Exception:  # noqa: BLE001 - containers soundfile cannot read: PyAV, planar float
        try:
            import av

            with av.open(io.BytesIO(data)) as container:
                stream = container.streams.audio[0]
                frames = [f.to_ndarray() for f in container.decode(stream)]
                sr = stream.rate
            if frames and frames[0].dtype.kind == "i":
                frames = [f.astype(np.float32) / np.iinfo(f.dtype).max for f in frames]
            joined = np.concatenate(frames, axis=1).astype(np.float32)
            channels = [joined[c] for c in range(joined.shape[0])] if stream.format.is_planar else [
                joined.reshape(-1, stream.channels)[:, c] for c in range(stream.channels)]
        except Exception:  # noqa: BLE001
            raise AudioError(name, "not_audio", "no audio decoder recognised the data") from None
    if not channels or channels[0].size == 0:
        raise AudioError(name, "empty", "no samples decoded")
    if not all(np.isfinite(c).all() for c in channels):
        raise AudioError(name, "corrupt", "non-finite samples")
    return [resample(c, int(sr), target_sr) for c in channels]


def load_channels(path: str | Path, *, target_sr: int = SAMPLE_RATE) -> list[np.ndarray]:
    """`load_audio`, one array per channel (stereo call recordings: one speaker per channel)."""
    path = Path(path)
    if path.suffix.lower() in PCM_SUFFIXES:
        return [read_pcm(path, target_sr=target_sr)]
    if not path.exists():
        raise AudioError(path, "missing")
    try:
        data = path.read_bytes()
    except OSError as e:
        raise AudioError(path, "unreadable_audio", str(e)) from None
    return decode_channels(data, str(path), target_sr=target_sr)


def audio_duration_s(path: str | Path, pcm_sample_rate: int = SAMPLE_RATE) -> float:
    """Duration without decoding where the header tells it (PCM size, soundfile info); else decode."""
    path = Path(path)
    if path.suffix.lower() in PCM_SUFFIXES:
        return (path.stat().st_size // 2) / pcm_sample_rate
    try:
        import soundfile as sf

        info = sf.info(str(path))
        return info.frames / info.samplerate
    except Exception:  # noqa: BLE001
        return len(load_audio(path)) / SAMPLE_RATE


def write_wav(path: str | Path, audio: np.ndarray, sr: int = SAMPLE_RATE) -> Path:
    """Write float32 mono audio as 16-bit PCM WAV."""
    import soundfile as sf

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), np.clip(audio, -1.0, 1.0), sr, subtype="PCM_16")
    return path


@dataclass(frozen=True)
class Chunk:
    """A window of a long recording: samples [start, end) and its audio."""

    start: int
    end: int
    audio: np.ndarray

    @property
    def start_s(self) -> float:
        return self.start / SAMPLE_RATE


def _quietest_point(audio: np.ndarray, lo: int, hi: int, win: int = 400) -> int:
    """Sample index of the lowest-energy 25 ms window in [lo, hi)."""
    seg = audio[lo:hi]
    if len(seg) <= win:
        return hi
    energy = np.convolve(seg.astype(np.float64) ** 2, np.ones(win), mode="valid")
    return lo + int(np.argmin(energy)) + win // 2


def chunk_audio(audio: np.ndarray, max_s: float = 30.0, search_s: float = 5.0) -> list[Chunk]:
    """Split audio longer than `max_s` at the quietest point in the last `search_s` of each window.

    Cutting in a pause (not at a fixed offset) means no word is split across chunks, so no word is
    lost or doubled at the seams; chunks do not overlap.
    """
    max_len = int(max_s * SAMPLE_RATE)
    if len(audio) <= max_len:
        return [Chunk(0, len(audio), audio)]
    chunks, start = [], 0
    search = int(search_s * SAMPLE_RATE)
    while start < len(audio):
        if len(audio) - start <= max_len:
            end = len(audio)
        else:
            end = _quietest_point(audio, start + max_len - search, start + max_len)
        chunks.append(Chunk(start, end, audio[start:end]))
        start = end
    return chunks
