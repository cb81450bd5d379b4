"""Serving a speech LLM: the official `openai` client against `soritune serve` hosting a tiny random speech
LLM: chat completions with an input_audio part (plain and streamed), transcriptions, errors."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
openai = pytest.importorskip("openai")

from .conftest import tiny_config, tone  # noqa: E402

MAX_TOKENS = 6


def wav_bytes(audio: np.ndarray) -> bytes:
    import soundfile as sf

    buf = io.BytesIO()
    sf.write(buf, audio, 16000, format="WAV", subtype="PCM_16")
    return buf.getvalue()


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    from soritune.speechllm import SpeechLLM

    model = SpeechLLM(tiny_config(encoder_input="trimmed", lora=True))
    return model.save(tmp_path_factory.mktemp("sllm") / "model")


@pytest.fixture(scope="module")
def server(run_dir):
    """The server loads the run itself (the model spec is the run directory), as `soritune serve` does."""
    from soritune.serve.app import ServeConfig, create_app
    from soritune.serve.runner import BackgroundServer

    srv = BackgroundServer(create_app(ServeConfig(model=str(run_dir), max_new_tokens=MAX_TOKENS)),
                           start_timeout_s=30).start()
    srv.wait_ready(120)
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def client(server):
    return openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0, timeout=120)


@pytest.fixture(scope="module")
def clip():
    audio = tone(1.5, 600, seed=3)
    from soritune.audio import decode_bytes

    return audio, decode_bytes(wav_bytes(audio), "a.wav")  # what the server hears (16-bit PCM)


def _audio_part(audio: np.ndarray, fmt: str = "wav") -> dict:
    return {"type": "input_audio", "input_audio": {"data": base64.b64encode(wav_bytes(audio)).decode(), "format": fmt}}


def _expected(run_dir, audio, prompt: str, max_new_tokens: int = MAX_TOKENS) -> tuple[str, dict]:
    from soritune.speechllm import SpeechLLM

    model = SpeechLLM.load(run_dir)
    model.train(False)
    return model.generate(audio, prompt, max_new_tokens=max_new_tokens), model.last_generation


def test_chat_completion_with_input_audio_matches_the_model(client, run_dir, clip):
    audio, heard = clip
    prompt = "What is in this recording?"
    resp = client.chat.completions.create(model="sllm", max_tokens=MAX_TOKENS, messages=[{"role": "user", "content": [
        {"type": "text", "text": prompt}, _audio_part(audio)]}])
    text, gen = _expected(run_dir, heard, prompt)
    assert resp.object == "chat.completion" and resp.choices[0].message.role == "assistant"
    assert resp.choices[0].message.content == text
    assert resp.choices[0].finish_reason == ("length" if gen["hit_max_tokens"] else "stop")
    assert resp.usage.prompt_tokens == gen["prompt_tokens"] and resp.usage.completion_tokens == gen["new_tokens"]
    extra = resp.model_extra["soritune"]
    assert extra["audio"]["truncated_s"] == 0 and extra["audio"]["audio_tokens"] > 0
    assert extra["timings_ms"]["ttft"] is not None and extra["timings_ms"]["ttft"] <= extra["timings_ms"]["total"]


def test_streamed_chat_sends_openai_chunks_that_join_to_the_answer(client, run_dir, clip):
    audio, heard = clip
    stream = client.chat.completions.create(model="sllm", max_tokens=MAX_TOKENS, stream=True,
                                            stream_options={"include_usage": True},
                                            messages=[{"role": "user", "content": [_audio_part(audio)]}])
    chunks = list(stream)
    text, gen = _expected(run_dir, heard, "Transcribe the audio exactly, in its own language.")
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    assert chunks[0].choices[0].delta.role == "assistant"
    with_choice = [c for c in chunks if c.choices]
    assert "".join(c.choices[0].delta.content or "" for c in with_choice).strip() == text
    assert with_choice[-1].choices[0].finish_reason in ("stop", "length")
    assert not chunks[-1].choices and chunks[-1].usage.completion_tokens == gen["new_tokens"]
    assert len({c.id for c in chunks}) == 1


def test_system_message_changes_the_prompt(client, run_dir, clip):
    audio, heard = clip
    resp = client.chat.completions.create(model="sllm", max_tokens=MAX_TOKENS, messages=[
        {"role": "system", "content": "You are a careful Korean stenographer."},
        {"role": "user", "content": [_audio_part(audio), {"type": "text", "text": "Transcribe."}]}])
    _text, gen = _expected(run_dir, heard, "Transcribe.")
    assert resp.usage.prompt_tokens > gen["prompt_tokens"]  # the system turn is in the prompt


def test_transcriptions_route_is_served_by_the_speech_llm(client, run_dir, clip):
    audio, heard = clip
    result = client.audio.transcriptions.create(model="sllm", file=("a.wav", wav_bytes(audio)), language="ko")
    text, _gen = _expected(run_dir, heard, "Transcribe the audio exactly, in its own language.")
    assert result.text == text


def test_chat_errors_name_the_field(client, clip):
    audio, _ = clip
    cases = [
        ([{"role": "user", "content": "Transcribe."}], "audio_required"),
        ([{"role": "user", "content": [{"type": "input_audio", "input_audio": {"data": "@@not base64@@",
                                                                               "format": "wav"}}]}], "invalid_base64"),
        ([{"role": "user", "content": [_audio_part(audio)]}, {"role": "assistant", "content": "x"},
          {"role": "user", "content": [_audio_part(audio)]}], None),
        ([{"role": "user", "content": [{"type": "input_audio", "input_audio": {
            "data": base64.b64encode(b"not audio at all" * 10).decode(), "format": "mp3"}}]}], None),
    ]
    for messages, code in cases:
        with pytest.raises(openai.BadRequestError) as err:
            client.chat.completions.create(model="sllm", max_tokens=MAX_TOKENS, messages=messages)
        if code:
            assert err.value.code == code, err.value.message
    with pytest.raises(openai.BadRequestError, match="max_tokens"):
        client.chat.completions.create(model="sllm", max_tokens=10**6, messages=cases[2][0][:1])


def test_a_whisper_server_refuses_chat_with_a_clear_error(clip):
    from soritune.infer import load_backend
    from soritune.serve.app import ServeConfig, create_app
    from soritune.serve.runner import BackgroundServer

    srv = BackgroundServer(create_app(ServeConfig(model="tiny:"), load_backend("tiny:", backend="torch")),
                           start_timeout_s=30).start()
    try:
        srv.wait_ready(30)
        client = openai.OpenAI(base_url=srv.url + "/v1", api_key="unused", max_retries=0, timeout=60)
        with pytest.raises(openai.BadRequestError) as err:
            client.chat.completions.create(model="x", messages=[{"role": "user", "content": [_audio_part(clip[0])]}])
        assert err.value.code == "not_a_chat_model"
    finally:
        srv.stop()
