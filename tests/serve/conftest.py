"""Fixtures for the server tests: the tiny random Whisper behind real uvicorn servers on 127.0.0.1."""

from __future__ import annotations

import io

import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
pytest.importorskip("openai")

MAX_NEW_TOKENS = 8  # the tiny model never stops by itself; few tokens keep each call well under a second


@pytest.fixture(scope="session")
def tiny_backend():
    from soritune.infer import load_backend

    return load_backend("tiny:", backend="torch")


@pytest.fixture(scope="session")
def clip():
    """A synthesised Korean sentence, 16 kHz float32."""
    from soritune.data.synth import speak

    return speak("안녕하세요. 오늘 수업은 미분입니다.")


@pytest.fixture(scope="session")
def wav_bytes(clip, tmp_path_factory):
    from soritune.audio import write_wav

    path = write_wav(tmp_path_factory.mktemp("audio") / "clip.wav", clip)
    return path.read_bytes()


@pytest.fixture(scope="session")
def expected_text(tiny_backend, wav_bytes):
    """What the backend itself says for the decoded upload: the server must return exactly this."""
    from soritune.audio import decode_bytes

    audio = decode_bytes(wav_bytes, "clip.wav")
    return tiny_backend.transcribe([audio], language="ko", max_new_tokens=MAX_NEW_TOKENS)[0].text


@pytest.fixture
def make_server(tiny_backend):
    """make_server(**config) -> a started BackgroundServer (model already loaded); all stopped at teardown."""
    from soritune.serve.app import ServeConfig, create_app
    from soritune.serve.runner import BackgroundServer

    servers = []

    def make(backend=tiny_backend, **fields):
        fields.setdefault("model", "tiny:")
        fields.setdefault("max_new_tokens", MAX_NEW_TOKENS)
        srv = BackgroundServer(create_app(ServeConfig(**fields), backend), start_timeout_s=30).start()
        servers.append(srv)
        if backend is not None:
            srv.wait_ready(30)
        return srv

    yield make
    for srv in servers:
        srv.stop()


@pytest.fixture
def server(make_server):
    return make_server()


@pytest.fixture
def client_for():
    """client_for(server, api_key=...) -> the official openai client pointed at that server, no retries."""
    import openai

    def make(srv, api_key: str = "unused", timeout_s: float = 60.0):
        return openai.OpenAI(base_url=srv.url + "/v1", api_key=api_key, max_retries=0, timeout=timeout_s)

    return make


def wav_of(audio: np.ndarray) -> bytes:
    """float32 16 kHz -> WAV bytes."""
    import soundfile as sf

    buf = io.BytesIO()
    sf.write(buf, audio, 16000, format="WAV", subtype="PCM_16")
    return buf.getvalue()


@pytest.fixture
def to_wav():
    return wav_of
