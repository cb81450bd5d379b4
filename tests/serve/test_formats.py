"""Response formats are pure functions of the segments."""

from __future__ import annotations

import json

from soritune.serve import formats

SEGMENTS = [
    {"start": 0.0, "end": 29.512, "text": " 안녕하세요. "},
    {"start": 29.512, "end": 31.0, "text": ""},  # a silent chunk: no cue
    {"start": 31.0, "end": 3725.4567, "text": "둘째 줄\n\n셋째 --> 줄"},
]


def test_clock_rounds_to_millisecond_and_rolls_over_hours():
    assert formats.clock(0) == "00:00:00,000"
    assert formats.clock(3725.4567) == "01:02:05,457"
    assert formats.clock(59.9996, ".") == "00:01:00.000"
    assert formats.clock(-1) == "00:00:00,000"


def test_srt_numbers_cues_without_gaps_and_skips_empty_text():
    srt = formats.to_srt(SEGMENTS)
    blocks = srt.strip().split("\n\n")
    assert len(blocks) == 2
    assert blocks[0] == "1\n00:00:00,000 --> 00:00:29,512\n안녕하세요."
    lines = blocks[1].split("\n")
    assert lines[0] == "2"
    assert lines[1] == "00:00:31,000 --> 01:02:05,457"
    # a blank line inside a cue would end it; '-->' inside text would read as a timing line
    assert lines[2:] == ["둘째 줄", "셋째 -> 줄"]


def test_vtt_header_and_dot_separator():
    vtt = formats.to_vtt(SEGMENTS)
    assert vtt.startswith("WEBVTT\n\n")
    assert "00:00:00.000 --> 00:00:29.512\n안녕하세요.\n" in vtt
    assert vtt.count("-->") == 2


def test_empty_transcript_gives_empty_subtitles():
    assert formats.to_srt([]) == ""
    assert formats.to_vtt([{"start": 0, "end": 1, "text": "  "}]) == "WEBVTT\n"


def test_json_and_text():
    assert formats.to_json("안녕", 2.5) == {"text": "안녕", "usage": {"type": "duration", "seconds": 2.5}}
    assert formats.to_text(" 안녕 ") == "안녕\n"


def test_verbose_json_has_openai_fields_and_says_decoding_is_greedy():
    segs = [{"start": 0.0, "end": 1.25, "text": "가", "tokens": [1, 2], "truncated": True}]
    body = formats.to_verbose_json("가", segs, language="korean", duration_s=1.25, extra={"decoding": "greedy"})
    json.dumps(body)  # serialisable
    assert {"task", "language", "duration", "text", "segments"} <= set(body)
    seg = body["segments"][0]
    assert {"id", "seek", "start", "end", "text", "tokens", "temperature", "avg_logprob", "compression_ratio",
            "no_speech_prob"} <= set(seg)
    assert seg["temperature"] == 0.0 and seg["truncated"] is True and seg["tokens"] == [1, 2]
    assert body["soritune"] == {"decoding": "greedy"}


def test_compression_ratio_flags_repetition():
    assert formats.compression_ratio("") == 0.0
    looping, normal = "가나다 " * 50, "오늘 수업은 미분입니다."
    assert formats.compression_ratio(looping) > 2.4 > formats.compression_ratio(normal)


def test_join_texts_drops_empty_chunks():
    assert formats.join_texts([" 하나 ", "", "  ", "둘\n셋"]) == "하나 둘 셋"
