"""Decoding options through the server: prompt, word granularity, SSE streaming through the real
`openai` client, and diarize=channels on a synthetic stereo call (tiny Whisper)."""

from __future__ import annotations

import io
import json

import numpy as np
import openai
import pytest

from soritune.infer.options import DecodeOptions

MAX_NEW_TOKENS = 8


def _expected(backend, wav_bytes, **fields) -> str:
    from soritune.audio import decode_bytes

    options = DecodeOptions(language="ko", max_new_tokens=MAX_NEW_TOKENS, **fields)
    return backend.decode([decode_bytes(wav_bytes)], options)[0].text


def test_prompt_is_honoured(server, client_for, wav_bytes, tiny_backend, expected_text):
    with_prompt = _expected(tiny_backend, wav_bytes, initial_prompt="미분 적분 수업")
    assert with_prompt != expected_text  # the prompt changes what the random model says
    out = client_for(server).audio.transcriptions.create(
        model="whisper-1", file=("clip.wav", wav_bytes), language="ko", prompt="미분 적분 수업",
        response_format="verbose_json")
    assert out.text == with_prompt and out.model_extra["soritune"]["decoding"]["prompt_used"] is True


def test_word_granularity_and_segment_statistics(server, client_for, wav_bytes, clip):
    out = client_for(server).audio.transcriptions.create(
        model="whisper-1", file=("clip.wav", wav_bytes), language="ko", response_format="verbose_json",
        timestamp_granularities=["word", "segment"])
    duration_s = len(clip) / 16000
    assert out.words and all(0 <= w.start <= w.end <= duration_s + 0.01 for w in out.words)
    assert "".join(w.word for w in out.words).replace(" ", "") == out.text.replace(" ", "")
    seg = out.segments[0]
    assert seg.avg_logprob < 0 and 0 <= seg.no_speech_prob <= 1 and seg.compression_ratio > 0


def test_sse_stream_through_openai_client(server, client_for, wav_bytes, expected_text):
    client = client_for(server)
    events = list(client.audio.transcriptions.create(model="whisper-1", file=("clip.wav", wav_bytes),
                                                     language="ko", stream=True))
    kinds = [e.type for e in events]
    assert kinds[-1] == "transcript.text.done" and "transcript.text.delta" in kinds
    assert "transcript.text.segment" in kinds
    deltas = "".join(e.delta for e in events if e.type == "transcript.text.delta")
    assert deltas.strip() == expected_text == events[-1].text
    seg = next(e for e in events if e.type == "transcript.text.segment")
    assert seg.text == expected_text and seg.start >= 0 and seg.end > seg.start


def test_sse_stream_words_carry_times(server, wav_bytes):
    import httpx

    r = httpx.post(f"{server.url}/v1/audio/transcriptions", timeout=60,
                   files={"file": ("clip.wav", wav_bytes)},
                   data={"stream": "true", "language": "ko", "timestamp_granularities[]": "word"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    lines = [ln[6:] for ln in r.text.split("\n\n") if ln.startswith("data: ")]
    assert lines[-1] == "[DONE]"
    deltas = [json.loads(x) for x in lines[:-1] if json.loads(x)["type"] == "transcript.text.delta"]
    assert len(deltas) >= 2 and all(d["end"] >= d["start"] for d in deltas)
    assert [d["start"] for d in deltas] == sorted(d["start"] for d in deltas)


def test_sse_stream_reports_bad_audio_in_band(server):
    import httpx

    r = httpx.post(f"{server.url}/v1/audio/transcriptions", timeout=60,
                   files={"file": ("a.wav", b"not audio at all")}, data={"stream": "true"})
    events = [json.loads(ln[6:]) for ln in r.text.split("\n\n") if ln.startswith("data: {")]
    assert events[-1]["type"] == "error" and events[-1]["error"]["code"] == "audio_not_audio"


def stereo_call(sr: int = 8000):
    """Agent speaks on channel 1 at 0.5 s, customer on channel 2 after the agent: an 8-kHz phone call."""
    from soritune.audio import resample
    from soritune.data.synth import speak

    agent, customer = speak("안녕하세요. 무엇을 도와드릴까요?"), speak("요금이 두 번 나왔어요.")
    start_c = int(0.5 * 16000) + len(agent) + 16000
    total = start_c + len(customer) + 8000
    left, right = np.zeros(total, np.float32), np.zeros(total, np.float32)
    left[8000:8000 + len(agent)] = agent
    right[start_c:start_c + len(customer)] = customer
    both = np.stack([resample(left, 16000, sr), resample(right, 16000, sr)], axis=1)
    buf = io.BytesIO()
    import soundfile as sf

    sf.write(buf, both, sr, format="WAV", subtype="PCM_16")
    return buf.getvalue(), 0.5, start_c / 16000


def test_diarize_channels_labels_turns(server, wav_bytes):
    import httpx

    data, agent_s, customer_s = stereo_call()
    r = httpx.post(f"{server.url}/v1/audio/transcriptions", timeout=120, files={"file": ("call.wav", data)},
                   data={"diarize": "channels", "response_format": "verbose_json", "language": "ko"})
    assert r.status_code == 200, r.text
    segs = r.json()["segments"]
    speakers = [s["speaker"] for s in segs]
    assert speakers[0] == "agent" and speakers[-1] == "customer" and set(speakers) == {"agent", "customer"}
    first_agent = next(s for s in segs if s["speaker"] == "agent")
    first_customer = next(s for s in segs if s["speaker"] == "customer")
    assert first_agent["start"] == pytest.approx(agent_s, abs=0.5)
    assert first_customer["start"] == pytest.approx(customer_s, abs=0.5)
    assert [s["start"] for s in segs] == sorted(s["start"] for s in segs)


def test_openai_stream_type_is_the_clients(server, client_for, wav_bytes):
    stream = client_for(server).audio.transcriptions.create(model="whisper-1", file=("clip.wav", wav_bytes),
                                                            stream=True)
    assert isinstance(stream, openai.Stream)
    assert any(isinstance(e, openai.types.audio.TranscriptionTextDoneEvent) for e in stream)


def _three_chunk_upload(clip) -> np.ndarray:
    """The clip three times, ~25 s apart: three <= 30-s chunks, cut at the quiet stretches."""
    gap = np.zeros(int(22 * 16000), np.float32)
    return np.concatenate([clip, gap, clip, gap, clip, gap[:16000]])


@pytest.mark.parametrize("stream", [False, True])
def test_previous_text_conditioning_as_transcribe_does(make_server, tiny_backend, clip, to_wav, stream):
    """With condition_on_previous_text the server prompts each chunk with the text before it, exactly
    as `transcribe` does (the same DecodeOptions, chunks and prompts -> the same segment texts), and
    that differs from decoding the chunks independently."""
    import httpx

    from soritune.audio import decode_bytes
    from soritune.infer.transcribe import transcribe_streams

    data = to_wav(_three_chunk_upload(clip))
    audio = decode_bytes(data, "long.wav")
    on = DecodeOptions(language="ko", max_new_tokens=MAX_NEW_TOKENS, condition_on_previous_text=True,
                       log_prob_threshold=None, compression_ratio_threshold=None, no_speech_threshold=None)
    expected = [s["text"] for s in transcribe_streams([[(None, audio)]], tiny_backend, on)[0][0]]
    independent = [s["text"] for s in transcribe_streams(
        [[(None, audio)]], tiny_backend, on.model_copy(update={"condition_on_previous_text": False}))[0][0]]
    assert len(expected) == 3 and expected[0] == independent[0] and expected != independent
    srv = make_server(decode=on)
    r = httpx.post(f"{srv.url}/v1/audio/transcriptions", timeout=120, files={"file": ("long.wav", data)},
                   data={"language": "ko", "response_format": "verbose_json", "stream": str(stream).lower()})
    assert r.status_code == 200, r.text
    if stream:
        events = [json.loads(ln[6:]) for ln in r.text.split("\n\n") if ln.startswith("data: {")]
        got = [e["text"] for e in events if e["type"] == "transcript.text.segment"]
    else:
        got = [s["text"] for s in r.json()["segments"]]
    assert got == expected


class SkippingBackend:
    """Writes one segment over the first second of whatever it decodes first (a packed chunk: the rest
    skipped); every later call, the whole clip (a region decoded alone)."""

    name = "skipping"

    def __init__(self):
        self.calls = []

    def decode(self, audios, options, keys=None, progress=None, contexts=None):
        from soritune.infer.base import Transcription

        self.calls.append([len(a) / 16000 for a in audios])
        text = "첫 문장" if len(self.calls) == 1 else "둘째 문장"
        end = 1.0 if len(self.calls) == 1 else None
        return [Transcription(text=text, segments=[{"start": 0.0, "end": end or len(a) / 16000, "text": text,
                                                    "tokens": []}]) for a in audios]

    def transcribe(self, audios, **kw):
        return self.decode(audios, None)

    def describe(self):
        return {"backend": self.name, "spec": "skipping"}


@pytest.mark.parametrize("stream", [False, True])
def test_skipped_region_decoded_again_as_transcribe_does(make_server, to_wav, stream):
    """A VAD speech region the first pass skipped is decoded again alone by the server, through the same
    steps as `transcribe` (infer.transcribe.skipped_regions / with_redecoded): the same segments."""
    import httpx

    from soritune.audio import decode_bytes
    from soritune.data.synth import speak
    from soritune.infer.transcribe import transcribe_streams

    silence = lambda s: np.zeros(int(s * 16000), np.float32)  # noqa: E731
    data = to_wav(np.concatenate([silence(1), speak("오늘은 미분을 배웁니다"), silence(2),
                                  speak("다음 시간에는 적분입니다"), silence(1)]))
    options = DecodeOptions.long_form(condition_on_previous_text=False)
    local = SkippingBackend()
    expected = transcribe_streams([[(None, decode_bytes(data, "two.wav"))]], local, options)[0][0]
    assert [s["text"] for s in expected] == ["첫 문장", "둘째 문장"] and len(local.calls) == 2
    backend = SkippingBackend()
    srv = make_server(backend=backend, decode=options)
    r = httpx.post(f"{srv.url}/v1/audio/transcriptions", timeout=120, files={"file": ("two.wav", data)},
                   data={"language": "ko", "response_format": "verbose_json", "stream": str(stream).lower()})
    assert r.status_code == 200, r.text
    if stream:
        events = [json.loads(ln[6:]) for ln in r.text.split("\n\n") if ln.startswith("data: {")]
        got = [(e["text"], e["start"]) for e in events if e["type"] == "transcript.text.segment"]
    else:
        got = [(s["text"], s["start"]) for s in r.json()["segments"]]
    assert [t for t, _ in got] == ["첫 문장", "둘째 문장"]
    assert [s for _, s in got] == pytest.approx([s["start"] for s in expected], abs=0.01)
    assert backend.calls == local.calls  # the packed chunk, then the skipped region alone
