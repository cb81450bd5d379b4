"""Transcript decoding: CP949 / EUC-KR / UTF-8 detected, never assumed; bad bytes reported."""

from __future__ import annotations

import pytest

from soritune.data.encoding import EncodingError, clean_text, decode_text, detect_encoding, read_text_file

KO = "한국어 음성 인식 뷁"  # 뷁 exists in CP949 but not in EUC-KR


@pytest.mark.parametrize("enc,name", [("utf-8", "utf-8"), ("cp949", "cp949"), ("utf-16", "utf-16")])
def test_decode_detects(enc, name):
    assert decode_text(KO.encode(enc)) == (KO, name)


def test_euc_kr_reported_when_it_suffices_and_bom_consumed():
    assert decode_text("안녕".encode("euc-kr")) == ("안녕", "euc-kr")
    assert decode_text(b"\xef\xbb\xbf" + "안녕".encode()) == ("안녕", "utf-8-sig")


def test_hint_is_tried_first_but_not_trusted():
    assert decode_text(KO.encode("cp949"), prefer="utf-8")[1] == "cp949"
    assert decode_text(KO.encode("utf-8"), prefer="cp949")[1] == "utf-8"


def test_undecodable_bytes_raise_bad_encoding():
    with pytest.raises(EncodingError) as e:
        decode_text(b"\x80\xff\xfe\x81", where="x.txt")
    assert e.value.reason == "bad_encoding" and "x.txt" in str(e.value)


def test_detect_encoding_from_a_cut_sample():
    data = ("가" * 100).encode("utf-8")
    assert detect_encoding(data[:100]) == "utf-8"  # cut in the middle of a character
    assert detect_encoding(("가" * 100).encode("cp949")[:99]) == "cp949"
    assert detect_encoding(b"ascii only") == "utf-8"


def test_clean_text_strips_invisibles_and_composes():
    import unicodedata

    raw = "\ufeff" + unicodedata.normalize("NFD", "한글") + "\u200b\u200c\u200d\u2060\x00\x07 끝\t"
    assert clean_text(raw) == "한글 끝\t"


def test_read_text_file(tmp_path):
    (tmp_path / "a.txt").write_bytes(KO.encode("cp949"))
    assert read_text_file(tmp_path / "a.txt") == (KO, "cp949")
