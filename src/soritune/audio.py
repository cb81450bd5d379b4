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


BLOCK_S = 10.0  # decode and resample in blocks of this many seconds: memory does not grow with the file


def _source(data):
    return io.BytesIO(data) if isinstance(data, (bytes, bytearray, memoryview)) else str(data)


def _soundfile_blocks(data, name: str, block_s: float):
    """(probed duration or None, iterator of (mono float32 block, rate)); raises if soundfile cannot open it."""
    import soundfile as sf

    f = sf.SoundFile(_source(data))
    sr = int(f.samplerate)
    duration = f.frames / sr if f.frames > 0 else None

    def blocks():
        with f:
            while True:
                block = f.read(max(1, int(block_s * sr)), dtype="float32", always_2d=True)
                if not len(block):
                    return
                yield to_mono(block), sr

    return duration, blocks()


def _av_blocks(data, name: str, block_s: float):
    """The same through PyAV (containers: mp3, m4a, ogg/opus, webm, ...): 16 kHz mono via its resampler."""
    import av

    container = av.open(_source(data))
    if not container.streams.audio:
        container.close()
        raise ValueError("no audio stream")
    stream = container.streams.audio[0]
    duration = None
    if stream.duration and stream.time_base:
        duration = float(stream.duration * stream.time_base)
    elif container.duration:
        duration = container.duration / 1_000_000  # av.time_base

    def blocks():
        resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
        pending, pending_n = [], 0
        with container:
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    pending.append(out.to_ndarray().reshape(-1))
                    pending_n += pending[-1].size
                if pending_n >= block_s * SAMPLE_RATE:
                    yield np.concatenate(pending).astype(np.float32), SAMPLE_RATE
                    pending, pending_n = [], 0
            for out in resampler.resample(None):
                pending.append(out.to_ndarray().reshape(-1))
        if pending:
            yield np.concatenate(pending).astype(np.float32), SAMPLE_RATE

    return duration, blocks()


def duration_from_header(data) -> float | None:
    """Duration from the container header (soundfile info, else the PyAV stream), without decoding.

    `data`: the file's bytes or its path. None when no reader opens it or the header has no duration."""
    for opener in (_soundfile_blocks, _av_blocks):
        try:
            duration, blocks = opener(data, "<bytes>", BLOCK_S)
        except Exception:  # noqa: BLE001 - try the next reader
            continue
        blocks.close()
        return duration
    return None


def _too_long(name: str, duration_s: float, max_duration_s: float, probed: bool) -> AudioError:
    how = "its header says" if probed else "decoding reached"
    return AudioError(name, "too_long", f"{how} {duration_s:.0f} s; at most {max_duration_s:.0f} s accepted")


def iter_decode(data: bytes, name: str = "<bytes>", *, target_sr: int = SAMPLE_RATE,
                max_duration_s: float | None = None, block_s: float = BLOCK_S):
    """Decode in-memory audio block by block: yields mono float32 arrays at `target_sr`.

    Memory stays at one block at the native rate plus the resampler's state, whatever the length.
    The duration in the header is checked against `max_duration_s` before any decoding, and the
    decoded length again while decoding (a header can lie). Raises AudioError `empty`, `not_audio`,
    `corrupt` or `too_long`.
    """
    if not data:
        raise AudioError(name, "empty", "0 bytes")
    opened = None
    for opener in (_soundfile_blocks, _av_blocks):
        try:
            duration, blocks = opener(data, name, block_s)
            first = next(blocks, None)
        except Exception:  # noqa: BLE001 - try the next decoder
            continue
        opened = (duration, first, blocks)
        break
    if opened is None:
        raise AudioError(name, "not_audio", "no audio decoder recognised the data")
    duration, first, blocks = opened
    try:
        if max_duration_s and duration and duration > max_duration_s:
            raise _too_long(name, duration, max_duration_s, probed=True)
        if first is None:
            raise AudioError(name, "empty", "no samples decoded")
        yield from _resampled(_chain(first, blocks, name), name, target_sr, max_duration_s)
    finally:
        blocks.close()


def _chain(first, blocks, name: str):
    yield first
    try:
        yield from blocks
    except Exception as e:  # noqa: BLE001 - a decoder error mid-file
        raise AudioError(name, "corrupt", f"decoding failed part way: {e}") from None


def _resampled(blocks, name: str, target_sr: int, max_duration_s: float | None):
    stream, sr, total = None, None, 0
    for block, block_sr in blocks:
        if not np.isfinite(block).all():
            raise AudioError(name, "corrupt", "non-finite samples")
        if sr is None and block_sr != target_sr:
            import soxr

            stream = soxr.ResampleStream(block_sr, target_sr, 1, dtype="float32", quality="HQ")
        sr = block_sr
        out = stream.resample_chunk(block, last=False) if stream is not None else block.astype(np.float32, copy=False)
        total += out.size
        if max_duration_s and total > max_duration_s * target_sr:
            raise _too_long(name, total / target_sr, max_duration_s, probed=False)
        if out.size:
            yield out
    if stream is not None:
        tail = stream.resample_chunk(np.zeros(0, dtype=np.float32), last=True)
        if tail.size:
            yield tail


def decode_bytes(data: bytes, name: str = "<bytes>", *, target_sr: int = SAMPLE_RATE,
                 max_duration_s: float | None = None) -> np.ndarray:
    """Decode an in-memory audio file (any format soundfile or PyAV reads) to mono float32 at target_sr."""
    parts = list(iter_decode(data, name, target_sr=target_sr, max_duration_s=max_duration_s))
    audio = np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)
    if audio.size == 0:
        raise AudioError(name, "empty", "no samples decoded")
    return audio


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
    """Duration of a file that is known to decode: PCM from its size; otherwise the first block is
    decoded (so an unreadable file raises AudioError here, not later) and the header's duration is
    returned, or the decoded length where the header has none."""
    path = Path(path)
    if path.suffix.lower() in PCM_SUFFIXES:
        return (path.stat().st_size // 2) / pcm_sample_rate
    if not path.exists():
        raise AudioError(path, "missing")
    if not path.is_file():
        raise AudioError(path, "unreadable_audio", "not a regular file")
    for opener in (_soundfile_blocks, _av_blocks):
        try:
            duration, blocks = opener(path, str(path), BLOCK_S)
            first = next(blocks, None)
        except Exception:  # noqa: BLE001 - try the next reader
            continue
        blocks.close()
        if first is None:
            raise AudioError(path, "empty", "no samples decoded")
        if duration:
            return duration
        break
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


def iter_chunks(blocks, max_s: float = 30.0, search_s: float = 5.0):
    """Chunks of a stream of 16 kHz blocks, cut as `chunk_audio` cuts (needs only `max_s` of look-ahead)."""
    max_len, search = int(max_s * SAMPLE_RATE), int(search_s * SAMPLE_RATE)
    buf, offset = np.zeros(0, dtype=np.float32), 0
    for block in blocks:
        buf = np.concatenate([buf, block]) if buf.size else block
        while len(buf) > max_len:  # more audio follows this window: cut it in its quietest point
            end = _quietest_point(buf, max_len - search, max_len)
            yield Chunk(offset, offset + end, buf[:end])
            buf, offset = buf[end:], offset + end
    if buf.size or offset == 0:
        yield Chunk(offset, offset + len(buf), buf)


def chunk_audio(audio: np.ndarray, max_s: float = 30.0, search_s: float = 5.0) -> list[Chunk]:
    """Split audio longer than `max_s` at the quietest point in the last `search_s` of each window.

    Cutting in a pause (not at a fixed offset) means no word is split across chunks, so no word is
    lost or doubled at the seams; chunks do not overlap.
    """
    return list(iter_chunks([audio], max_s, search_s))
