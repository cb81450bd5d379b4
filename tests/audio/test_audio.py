"""Audio decoding: formats, rates, channels, PCM, error reasons, chunking at pauses."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from soritune.audio import SAMPLE_RATE, chunk_audio, decode_bytes, load_audio, read_pcm
from soritune.errors import AudioError


def _tone(sr: int, seconds: float = 1.0, channels: int = 1) -> np.ndarray:
    t = np.arange(int(sr * seconds)) / sr
    x = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    return np.stack([x] * channels, axis=1) if channels > 1 else x


@pytest.mark.parametrize("fmt,subtype", [("WAV", "PCM_16"), ("FLAC", "PCM_16"), ("OGG", "VORBIS"), ("MP3", "MPEG_LAYER_III")])
@pytest.mark.parametrize("sr,channels", [(44100, 2), (8000, 1)])
def test_soundfile_formats_resampled_to_16k_mono(tmp_path, fmt, subtype, sr, channels):
    path = tmp_path / f"x.{fmt.lower()}"
    sf.write(str(path), _tone(sr, 1.0, channels), sr, format=fmt, subtype=subtype)
    audio = load_audio(path)
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert abs(len(audio) - SAMPLE_RATE) < 0.06 * SAMPLE_RATE  # mp3 adds encoder padding
    assert 0.2 < np.abs(audio).max() <= 1.0


@pytest.mark.parametrize("container,codec", [("mp4", "aac"), ("webm", "libopus")])
def test_container_formats_through_pyav(tmp_path, container, codec):
    import av

    path = tmp_path / f"x.{'m4a' if container == 'mp4' else container}"
    rate = 48000
    with av.open(str(path), "w", format=container) as out:
        stream = out.add_stream(codec, rate=rate)
        stream.layout = "stereo"
        x = _tone(rate, 1.0, 2).T.copy()
        frame = av.AudioFrame.from_ndarray(x.reshape(1, -1).astype(np.float32), format="flt", layout="stereo")
        frame.sample_rate = rate
        for packet in stream.encode(frame):
            out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    audio = load_audio(path)
    assert audio.ndim == 1 and abs(len(audio) / SAMPLE_RATE - 1.0) < 0.1
    assert np.abs(audio).max() > 0.2


def test_headerless_pcm_with_odd_byte_count(tmp_path):
    pcm = (np.arange(1001, dtype=np.int16) * 10).tobytes() + b"\x01"  # odd length
    path = tmp_path / "x.pcm"
    path.write_bytes(pcm)
    audio = read_pcm(path)
    assert len(audio) == 1001
    assert load_audio(path).shape == (1001,)
    assert audio[1] == pytest.approx(10 / 32768)


def test_pcm_at_another_rate_is_resampled(tmp_path):
    path = tmp_path / "x.pcm"
    path.write_bytes((np.zeros(8000, dtype=np.int16)).tobytes())
    assert len(read_pcm(path, sample_rate=8000)) == 16000


@pytest.mark.parametrize("content,reason", [(b"", "empty"), (b"this is not audio at all", "not_audio")])
def test_bad_files_have_reasons(tmp_path, content, reason):
    path = tmp_path / "bad.wav"
    path.write_bytes(content)
    with pytest.raises(AudioError) as e:
        load_audio(path)
    assert e.value.reason == reason and str(path) in str(e.value)


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(AudioError) as e:
        load_audio(tmp_path / "nope.wav")
    assert e.value.reason == "missing"
    with pytest.raises(AudioError):
        load_audio(tmp_path)


def test_truncated_wav_is_reported_not_crashing(tmp_path):
    path = tmp_path / "t.wav"
    sf.write(str(path), _tone(16000), 16000)
    path.write_bytes(path.read_bytes()[:30])
    with pytest.raises(AudioError):
        load_audio(path)


def test_decode_bytes_matches_file(tmp_path):
    path = tmp_path / "x.wav"
    sf.write(str(path), _tone(16000), 16000)
    assert np.allclose(decode_bytes(path.read_bytes()), load_audio(path))


def test_chunks_cut_in_pauses_without_loss_or_overlap():
    rng = np.random.default_rng(0)
    pieces, spans, pos = [], [], 0
    for _ in range(14):  # 14 "sentences" of 3-5 s separated by 0.6 s pauses: ~70 s
        n = int(rng.uniform(3, 5) * SAMPLE_RATE)
        pieces += [rng.uniform(-0.5, 0.5, n).astype(np.float32), np.zeros(int(0.6 * SAMPLE_RATE), np.float32)]
        spans.append((pos, pos + n))
        pos += n + int(0.6 * SAMPLE_RATE)
    audio = np.concatenate(pieces)
    chunks = chunk_audio(audio, max_s=30.0)
    assert len(chunks) >= 3
    assert np.array_equal(np.concatenate([c.audio for c in chunks]), audio)  # nothing lost or doubled
    for c in chunks:
        assert len(c.audio) <= 30 * SAMPLE_RATE
    for a, b in zip(chunks, chunks[1:]):
        assert a.end == b.start
        assert not any(s < a.end < e for s, e in spans), "a cut fell inside a sentence"


def test_short_audio_is_one_chunk():
    audio = np.zeros(SAMPLE_RATE * 5, np.float32)
    assert len(chunk_audio(audio)) == 1
