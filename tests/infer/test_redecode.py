"""The long-form second pass: a VAD speech region the first pass wrote nothing for is decoded alone."""

from __future__ import annotations

import numpy as np
import pytest

from soritune.audio import SAMPLE_RATE
from soritune.infer.base import Transcription
from soritune.infer.options import DecodeOptions
from soritune.infer.transcribe import transcribe_streams


@pytest.fixture(scope="module")
def two_sentences():
    """Two spoken sentences 2 s apart: one VAD chunk of two speech regions."""
    from soritune.data.synth import speak

    a, b = speak("오늘은 미분을 배웁니다"), speak("다음 시간에는 적분입니다")
    audio = np.concatenate([np.zeros(SAMPLE_RATE, np.float32), a, np.zeros(2 * SAMPLE_RATE, np.float32), b,
                            np.zeros(SAMPLE_RATE, np.float32)])
    return audio, (len(a) + 3 * SAMPLE_RATE) / SAMPLE_RATE  # the second sentence's start, s


class SkippingBackend:
    """Writes one segment over the first second of a packed chunk (skips the rest); alone, the whole region."""

    def __init__(self, skip: bool):
        self.skip, self.calls = skip, []

    def decode(self, audios, options, keys=None, progress=None, contexts=None):
        self.calls.append([len(a) / SAMPLE_RATE for a in audios])
        out = []
        for a in audios:
            dur = len(a) / SAMPLE_RATE
            text = "첫 문장" if len(self.calls) == 1 else "둘째 문장"
            end = 1.0 if (self.skip and len(self.calls) == 1) else dur
            out.append(Transcription(text=text, segments=[{"start": 0.0, "end": end, "text": text, "tokens": []}]))
        return out


def test_a_skipped_region_is_decoded_again_alone(two_sentences):
    audio, second_s = two_sentences
    be = SkippingBackend(skip=True)
    segs = transcribe_streams([[(None, audio)]], be, DecodeOptions.long_form(condition_on_previous_text=False))[0][0]
    assert len(be.calls) == 2 and len(be.calls[0]) == 1 and len(be.calls[1]) == 1  # one chunk, one region again
    assert be.calls[1][0] < be.calls[0][0]
    assert [s["text"] for s in segs] == ["첫 문장", "둘째 문장"]
    assert segs[1]["start"] == pytest.approx(second_s, abs=0.5)


def test_no_second_pass_when_everything_is_covered(two_sentences):
    audio, _ = two_sentences
    be = SkippingBackend(skip=False)
    segs = transcribe_streams([[(None, audio)]], be, DecodeOptions.long_form())[0][0]
    assert len(be.calls) == 1 and [s["text"] for s in segs] == ["첫 문장"]
    be = SkippingBackend(skip=True)  # without segment timestamps there is nothing to judge coverage by
    transcribe_streams([[(None, audio)]], be, DecodeOptions.long_form(timestamps=False))
    assert len(be.calls) == 1


def test_output_times_stay_inside_the_speech_vad_found(two_sentences):
    """The VAD pads each region by vad_speech_pad_ms where it does not touch a neighbour: a word or
    segment the model places in that padding is moved onto the speech (a fine-tuned model's loose times)."""
    from soritune.infer.vad import PlannedChunk, speech_regions, with_speech_bounds

    pad = 6400  # 400 ms
    regions = with_speech_bounds([{"start": 0, "end": 20000}, {"start": 20000, "end": 50000},
                                  {"start": 70000, "end": 90000}], pad, 90000)
    assert [(r["speech_start"], r["speech_end"]) for r in regions] == [(0, 20000), (20000, 50000 - pad),
                                                                      (70000 + pad, 90000)]
    chunk = PlannedChunk(np.zeros(70000, np.float32), regions)
    assert chunk.in_speech(70000 / SAMPLE_RATE, 2) == pytest.approx((70000 + pad) / SAMPLE_RATE)
    assert chunk.in_speech(49000 / SAMPLE_RATE, 1) == pytest.approx((50000 - pad) / SAMPLE_RATE)
    assert chunk.in_speech(1.0, 0) == 1.0
    audio, second_s = two_sentences
    options = DecodeOptions.long_form()
    found = speech_regions(audio, options)
    assert len(found) == 2 and found[0]["speech_start"] - found[0]["start"] == pad
    be = SkippingBackend(skip=False)  # one segment over the whole packed chunk, from its first sample
    segs = transcribe_streams([[(None, audio)]], be, options)[0][0]
    assert segs[0]["start"] == pytest.approx(found[0]["speech_start"] / SAMPLE_RATE)
    assert segs[0]["start"] == pytest.approx(1.2, abs=0.1)  # 1 s of silence, then speak()'s 0.2 s lead


def test_a_region_partly_skipped_is_decoded_again():
    """With word times, a region with MAX_HOLE_S or more of its speech under no word is decoded again
    (the model wrote its start and jumped, or stretched one word over the rest); segments alone cannot tell."""
    from soritune.infer.transcribe import MAX_HOLE_S, skipped_regions
    from soritune.infer.vad import PlannedChunk

    chunk = PlannedChunk(np.zeros(5 * SAMPLE_RATE, np.float32), [{"start": 0, "end": 2 * SAMPLE_RATE},
                                                                 {"start": 3 * SAMPLE_RATE, "end": 6 * SAMPLE_RATE}])
    word = lambda a, b: {"start": a, "end": b, "word": " 말"}  # noqa: E731
    first = {"start": 0.0, "end": 2.0, "text": "", "words": [word(0.0, 1.0), word(1.0, 2.0)]}
    stretched = {"start": 3.0, "end": 6.0, "text": "", "words": [word(3.0, 3.5), word(3.5, 6.0)]}
    again = skipped_regions(chunk, [first, stretched])
    assert [c.regions for c in again] == [[chunk.regions[1]]] and len(again[0].audio) == 3 * SAMPLE_RATE
    assert 3.0 - 1.5 >= MAX_HOLE_S
    complete = {**stretched, "words": [word(3.0, 3.8), word(3.8, 4.6), word(4.6, 5.4), word(5.4, 6.0)]}
    assert skipped_regions(chunk, [first, complete]) == []
    no_words = [{**s, "words": []} for s in (first, stretched)]
    assert skipped_regions(chunk, no_words) == []  # segments cover both regions


def test_the_second_decode_replaces_the_first_only_where_that_wrote_little():
    """A region the first pass wrote (its word times left a hole: a number written short for long speech)
    keeps the first pass's text; one it wrote little of, or nothing, takes the second decode's."""
    from soritune.infer.transcribe import MIN_WRITTEN, with_redecoded
    from soritune.infer.vad import PlannedChunk

    alone = PlannedChunk(np.zeros(3 * SAMPLE_RATE, np.float32), [{"start": 3 * SAMPLE_RATE, "end": 6 * SAMPLE_RATE}])
    before = {"start": 0.0, "end": 2.0, "text": "첫 문장", "words": []}
    again = Transcription(text="질량 구백십칠 그램을", segments=[{"start": 0.0, "end": 3.0, "text": "질량 구백십칠 그램을",
                                                             "tokens": []}])
    written = {"start": 3.0, "end": 4.0, "text": "질량 917그램을", "words": []}
    assert with_redecoded([before, written], alone, again) == [before, written]  # 9 of 11 characters written
    cut = {**written, "text": "질량"}
    out = with_redecoded([before, cut], alone, again)
    assert [s["text"] for s in out] == ["첫 문장", "질량 구백십칠 그램을"]
    assert out[1]["start"] == pytest.approx(3.0)
    assert [s["text"] for s in with_redecoded([before], alone, again)] == ["첫 문장", "질량 구백십칠 그램을"]
    assert 2 / 11 < MIN_WRITTEN <= 9 / 11
