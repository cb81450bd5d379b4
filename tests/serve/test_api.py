"""The server end to end: real uvicorn on 127.0.0.1, the official openai client, the tiny Whisper."""

from __future__ import annotations

import concurrent.futures
import re
import threading

import httpx
import numpy as np
import openai
import pytest

from soritune.serve.metrics import parse_text

FORMATS = ["json", "text", "srt", "vtt", "verbose_json"]


def transcribe(client, data: bytes, name: str = "clip.wav", **kw):
    kw.setdefault("model", "whisper-1")
    return client.audio.transcriptions.create(file=(name, data), **kw)


@pytest.mark.parametrize("fmt", FORMATS)
def test_openai_client_round_trip(server, client_for, clip, wav_bytes, expected_text, fmt):
    from soritune.serve.formats import clock

    client = client_for(server)
    duration_s = len(clip) / 16000
    out = transcribe(client, wav_bytes, response_format=fmt, language="ko", temperature=0.0)
    if fmt == "json":
        assert isinstance(out, openai.types.audio.Transcription)
        assert out.text == expected_text
        assert out.usage.seconds == pytest.approx(duration_s, abs=0.01)
    elif fmt == "text":
        assert out == expected_text + "\n"
    elif fmt == "srt":
        m = re.fullmatch(r"1\n00:00:00,000 --> (\d\d:\d\d:\d\d,\d\d\d)\n(.+)\n", out)
        assert m, out
        assert m.group(2) == expected_text
        assert m.group(1) == clock(duration_s)
    elif fmt == "vtt":
        assert out.startswith("WEBVTT\n\n00:00:00.000 --> 00:00:0")
        assert out.rstrip("\n").endswith(expected_text)
    else:
        assert isinstance(out, openai.types.audio.TranscriptionVerbose)
        assert out.text == expected_text and out.language == "korean"
        assert out.duration == pytest.approx(duration_s, abs=0.01)
        assert len(out.segments) == 1 and out.segments[0].text == expected_text
        assert out.segments[0].end == pytest.approx(duration_s, abs=0.01)
        extra = out.model_extra["soritune"]
        assert extra["decoding"]["strategy"] == "greedy" and extra["decoding"]["prompt_used"] is False
        assert set(extra["timings_ms"]) == {"decode", "queue", "inference", "total"}


def test_temperature_samples_and_is_reported(server, client_for, wav_bytes):
    out = transcribe(client_for(server), wav_bytes, response_format="verbose_json", temperature=0.7)
    decoding = out.model_extra["soritune"]["decoding"]
    assert decoding["temperature_requested"] == 0.7 and decoding["temperatures"] == [0.7]
    assert out.segments[0].temperature == 0.7


def test_translation_endpoint(server, client_for, wav_bytes, tiny_backend):
    from soritune.audio import decode_bytes

    expected = tiny_backend.transcribe([decode_bytes(wav_bytes)], task="translate", max_new_tokens=8)[0].text
    client = client_for(server)
    assert client.audio.translations.create(model="whisper-1", file=("clip.wav", wav_bytes)).text == expected
    verbose = client.audio.translations.create(model="whisper-1", file=("clip.wav", wav_bytes),
                                               response_format="verbose_json")
    assert verbose.text == expected and verbose.language == "english" and verbose.task == "translate"


def test_models_lists_the_served_model(make_server, client_for):
    srv = make_server(model_name="soritune-tiny")
    models = client_for(srv).models.list()
    assert [m.id for m in models.data] == ["soritune-tiny"]
    card = models.data[0].model_extra
    assert card["spec"] == "tiny:" and "ko" in card["languages"]
    assert client_for(srv).models.retrieve("soritune-tiny").id == "soritune-tiny"
    with pytest.raises(openai.NotFoundError):
        client_for(srv).models.retrieve("gpt-4")


def test_auth_on(make_server, client_for, wav_bytes, expected_text):
    srv = make_server(api_key="sekret")
    assert transcribe(client_for(srv, api_key="sekret"), wav_bytes).text == expected_text
    with pytest.raises(openai.AuthenticationError) as e:
        transcribe(client_for(srv, api_key="wrong"), wav_bytes)
    assert e.value.body["code"] == "invalid_api_key"
    with pytest.raises(openai.AuthenticationError):
        client_for(srv, api_key="wrong").models.list()
    r = httpx.post(srv.url + "/v1/audio/transcriptions", files={"file": ("a.wav", wav_bytes)}, timeout=30)
    assert r.status_code == 401 and r.json()["error"]["code"] == "missing_api_key"
    assert httpx.get(srv.url + "/health", timeout=10).json()["auth"] is True  # health stays open


def test_auth_off_accepts_any_key(server, client_for, wav_bytes, expected_text):
    assert transcribe(client_for(server, api_key="anything"), wav_bytes).text == expected_text
    r = httpx.post(server.url + "/v1/audio/transcriptions", files={"file": ("a.wav", wav_bytes)}, timeout=30)
    assert r.status_code == 200 and r.json()["text"] == expected_text


BAD_INPUTS = {
    # name: (request kwargs for httpx.post, status, error code)
    "empty file": (dict(files={"file": ("a.wav", b"")}), 400, "audio_empty"),
    "not audio": (dict(files={"file": ("a.wav", b"hello, this is plain text, not audio" * 20)}), 400,
                  "audio_not_audio"),
    "too large": (dict(files={"file": ("a.wav", b"\0" * 1_500_000)}), 413, "file_too_large"),
    "no file": (dict(files={"model": (None, b"whisper-1")}), 400, "missing_file"),
    "form-urlencoded": (dict(data={"model": "whisper-1"}), 415, "invalid_content_type"),
    "file as text": (dict(files={"file": (None, b"abc")}), 400, "invalid_file"),
    "unknown field": (dict(files={"file": ("a.wav", b"RIFF")}, data={"beam_size": "5"}), 400, "unknown_parameter"),
    "unknown format": (dict(files={"file": ("a.wav", b"RIFF")}, data={"response_format": "xml"}), 400,
                       "invalid_response_format"),
    "unknown language": (dict(files={"file": ("a.wav", b"RIFF")}, data={"language": "klingon"}), 400,
                         "invalid_language"),
    "temperature out of range": (dict(files={"file": ("a.wav", b"RIFF")}, data={"temperature": "3"}), 400,
                                 "invalid_value"),
    "unknown granularity": (dict(files={"file": ("a.wav", b"RIFF")},
                                 data={"response_format": "verbose_json", "timestamp_granularities[]": "char"}), 400,
                            "invalid_value"),
    "stream not boolean": (dict(files={"file": ("a.wav", b"RIFF")}, data={"stream": "maybe"}), 400, "invalid_value"),
    "unknown diarize": (dict(files={"file": ("a.wav", b"RIFF")}, data={"diarize": "voices"}), 400, "invalid_value"),
    "json body": (dict(json={"file": "a.wav"}), 415, "invalid_content_type"),
    "duplicate field": (dict(files=[("file", ("a.wav", b"RIFF")), ("file", ("b.wav", b"RIFF"))]), 400,
                        "duplicate_parameter"),
    "unsupported openai field": (dict(files={"file": ("a.wav", b"RIFF")}, data={"include[]": "logprobs"}), 400,
                                 "unsupported_parameter"),
}


def test_bad_inputs_get_openai_errors_and_the_server_keeps_serving(make_server, client_for, wav_bytes,
                                                                    expected_text):
    srv = make_server(max_upload_mb=1.0)
    for name, (kwargs, status, code) in BAD_INPUTS.items():
        r = httpx.post(srv.url + "/v1/audio/transcriptions", timeout=30, **kwargs)
        assert r.status_code == status, (name, r.text)
        err = r.json()["error"]
        assert set(err) == {"message", "type", "param", "code"}, name
        assert err["type"] == "invalid_request_error" and err["message"], name
        if code:
            assert err["code"] == code, (name, err)
        health = httpx.get(srv.url + "/health", timeout=10)
        assert health.status_code == 200, f"/health after {name}: {health.text}"
    # the real client sees the same errors as exceptions, and a good request still works afterwards
    with pytest.raises(openai.BadRequestError) as e:
        transcribe(client_for(srv), b"", response_format="json")
    assert e.value.body["param"] == "file"
    with pytest.raises(openai.APIStatusError) as e:
        transcribe(client_for(srv), b"\0" * 3_000_000)
    assert e.value.status_code == 413
    assert transcribe(client_for(srv), wav_bytes).text == expected_text
    errors = parse_text(httpx.get(srv.url + "/metrics", timeout=10).text)
    assert errors['soritune_errors_total{code="audio_empty"}'] == 2
    assert errors['soritune_requests_total{route="/v1/audio/transcriptions",status="200"}'] == 1


def test_unknown_routes_and_methods_answer_in_openai_shape(server):
    r = httpx.get(server.url + "/v1/nothing", timeout=10)
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    r = httpx.get(server.url + "/v1/audio/transcriptions", timeout=10)
    assert r.status_code == 405 and r.json()["error"]["code"] == "method_not_allowed"


def test_long_audio_is_chunked_into_segments(make_server, client_for, clip, to_wav):
    server = make_server(max_chunks_per_request=3)  # all three chunks at the model at once
    gap = np.zeros(16000, dtype=np.float32)
    long_audio = np.concatenate([clip, gap] * 14)  # 65 s: three chunks of <= 30 s, cut in the gaps
    duration_s = len(long_audio) / 16000
    assert duration_s > 60
    out = transcribe(client_for(server), to_wav(long_audio), response_format="verbose_json")
    segs = out.segments
    assert len(segs) == 3
    loud_rms = float(np.sqrt(np.mean(long_audio ** 2)))
    for seg in segs[1:]:  # every cut lies in a pause, so no word is split
        at = int(round(seg.start * 16000))
        assert float(np.sqrt(np.mean(long_audio[at - 200:at + 200] ** 2))) < 0.05 * loud_rms, seg.start
    assert segs[0].start == 0 and segs[-1].end == pytest.approx(duration_s, abs=0.01)
    assert all(a.end == b.start for a, b in zip(segs, segs[1:]))  # contiguous, no overlap
    assert all(s.end - s.start <= 30.0 for s in segs)
    assert out.text == " ".join(s.text for s in segs if s.text)
    # the three chunks of one request go through the model together
    assert out.model_extra["soritune"]["batch_sizes"] == [3, 3, 3]
    srt = transcribe(client_for(server), to_wav(long_audio), response_format="srt")
    assert srt.count("-->") == sum(1 for s in segs if s.text.strip())


def _concurrent(n: int, fn):
    with concurrent.futures.ThreadPoolExecutor(n) as pool:
        futures = [pool.submit(fn, i) for i in range(n)]
        return [f.result(timeout=120) for f in futures]


def test_concurrent_requests_are_batched(make_server, client_for, wav_bytes, expected_text):
    srv = make_server(max_batch=8, batch_window_ms=300)
    client = client_for(srv)
    barrier = threading.Barrier(8, timeout=30)

    def one(_i):
        barrier.wait()
        return transcribe(client, wav_bytes, response_format="verbose_json")

    outs = _concurrent(8, one)
    assert all(o.text == expected_text for o in outs)  # batching does not change the transcript
    sizes = [o.model_extra["soritune"]["batch_sizes"][0] for o in outs]
    assert max(sizes) > 1, sizes
    metrics = parse_text(httpx.get(srv.url + "/metrics", timeout=10).text)
    assert metrics["soritune_batch_size_count"] < 8  # fewer model calls than requests
    assert metrics["soritune_batch_size_sum"] == 8
    assert metrics["soritune_transcription_latency_seconds_count"] == 8
    assert metrics["soritune_audio_seconds_total"] == pytest.approx(8 * outs[0].duration, rel=1e-3)


def test_max_batch_one_never_batches(make_server, client_for, wav_bytes):
    srv = make_server(max_batch=1, batch_window_ms=300)
    client = client_for(srv)
    outs = _concurrent(4, lambda _i: transcribe(client, wav_bytes, response_format="verbose_json"))
    assert [o.model_extra["soritune"]["batch_sizes"] for o in outs] == [[1]] * 4
    metrics = parse_text(httpx.get(srv.url + "/metrics", timeout=10).text)
    assert metrics["soritune_batch_size_count"] == 4


def test_health_is_not_ready_until_the_model_is_loaded(monkeypatch, make_server, client_for, tiny_backend,
                                                        wav_bytes, expected_text):
    from soritune.serve.app import ServerState

    release = threading.Event()

    def slow_load(self):
        assert release.wait(30)
        return tiny_backend

    monkeypatch.setattr(ServerState, "load", slow_load)
    srv = make_server(backend=None)
    r = httpx.get(srv.url + "/health", timeout=10)
    assert r.status_code == 503 and r.json()["status"] == "loading"
    with pytest.raises(openai.InternalServerError) as e:  # 503
        transcribe(client_for(srv), wav_bytes)
    assert e.value.body["code"] == "model_not_ready"
    release.set()
    srv.wait_ready(30)
    assert transcribe(client_for(srv), wav_bytes).text == expected_text
    metrics = parse_text(httpx.get(srv.url + "/metrics", timeout=10).text)
    assert metrics["soritune_model_ready"] == 1


def test_failed_load_is_reported_on_health(monkeypatch, make_server):
    from soritune.errors import ModelSpecError
    from soritune.serve.app import ServerState

    def broken(self):
        raise ModelSpecError("hf:/nowhere: no such model")

    monkeypatch.setattr(ServerState, "load", broken)
    srv = make_server(backend=None)
    for _ in range(100):
        body = httpx.get(srv.url + "/health", timeout=10).json()
        if body["status"] != "loading":
            break
        threading.Event().wait(0.05)
    assert body["status"] == "error" and "no such model" in body["error"]


def test_web_page_and_static_files_are_served(server):
    page = httpx.get(server.url + "/", timeout=10)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    for ref in re.findall(r'(?:src|href)="(/static/[^"]+)"', page.text):
        assert httpx.get(server.url + ref, timeout=10).status_code == 200, ref
    assert 'id="transcript"' in page.text and 'type="file"' in page.text
