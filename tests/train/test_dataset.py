"""Dataset + collator: prompt/labels layout, lazy audio, segments, skips, dynamic-length features."""

from __future__ import annotations

import json

import numpy as np
import pytest

from soritune.data.dataset import (
    ManifestDataset,
    WhisperCollator,
    bucket_frames,
    length_grouped_batches,
    load_segment,
)


@pytest.fixture(scope="module")
def processor():
    from soritune.models.tokenizer import build_processor

    return build_processor(80)


def test_labels_and_decoder_inputs(corpus, processor):
    tok = processor.tokenizer
    ds = ManifestDataset(corpus / "train.jsonl", tok, language="ko")
    coll = WhisperCollator(processor.feature_extractor, pad_token_id=tok.convert_tokens_to_ids("<|endoftext|>"))
    batch = coll([ds[0], ds[2]])
    dec, labels = batch["decoder_input_ids"], batch["labels"]
    assert tok.convert_ids_to_tokens(dec[0, :4].tolist()) == ["<|startoftranscript|>", "<|ko|>", "<|transcribe|>", "<|notimestamps|>"]
    assert tok.convert_ids_to_tokens(labels[0, :3].tolist()) == ["<|ko|>", "<|transcribe|>", "<|notimestamps|>"]
    assert (dec[:, 1:] == labels[:, :-1]).logical_or(labels[:, :-1] == -100).all()  # labels = inputs shifted
    for row, text in ((0, ds.texts[0]), (1, ds.texts[2])):
        lab = [t for t in labels[row].tolist() if t != -100]
        assert lab[-1] == tok.convert_tokens_to_ids("<|endoftext|>")
        assert tok.decode(lab[3:-1]) == text
    shorter = int(np.argmin([len(ds.tokens(0)), len(ds.tokens(2))]))
    assert (labels[shorter] == -100).any()
    assert batch["ids"] == [ds.ids[0], ds.ids[2]]


def test_language_is_configurable_and_checked(corpus, processor):
    ds = ManifestDataset(corpus / "train.jsonl", processor.tokenizer, language="en")
    assert processor.tokenizer.convert_ids_to_tokens(ds.tokens(0)[1]) == "<|en|>"
    from soritune.errors import SoritunError

    with pytest.raises(SoritunError, match="language"):
        ManifestDataset(corpus / "train.jsonl", processor.tokenizer, language="xx")


def test_dynamic_features_equal_the_30s_features_prefix(corpus, processor):
    tok = processor.tokenizer
    ds = ManifestDataset(corpus / "train.jsonl", tok)
    eot = tok.convert_tokens_to_ids("<|endoftext|>")
    items = [ds[0], ds[1]]
    short = WhisperCollator(processor.feature_extractor, eot, dynamic_length=True, bucket_s=1.0)(items)
    full = WhisperCollator(processor.feature_extractor, eot, dynamic_length=False)(items)
    frames = short["input_features"].shape[-1]
    assert full["input_features"].shape[-1] == 3000
    assert frames == max(bucket_frames(len(it["audio"]), 1.0) for it in items) and frames % 100 == 0 and frames < 3000
    assert np.allclose(short["input_features"].numpy(), full["input_features"][..., :frames].numpy(), atol=1e-6)


def test_bucket_frames():
    assert bucket_frames(16000, 1.0) == 100
    assert bucket_frames(16001, 1.0) == 200
    assert bucket_frames(16000 * 40, 1.0) == 3000
    assert bucket_frames(8000, 0.5) == 50
    assert bucket_frames(8000, 0.25) == 52  # 0.25 s = 25 frames, rounded up to an even 26


def test_skips_are_reported_with_reasons(corpus, processor, tmp_path):
    rows = [json.loads(line) for line in (corpus / "train.jsonl").read_text().splitlines()]
    rows = [{**r, "audio": str(corpus / r["audio"])} for r in rows[:3]]
    rows.append({**rows[0], "id": "long", "duration": 31.0})
    rows.append({**rows[0], "id": "empty", "text": "  "})
    rows.append({**rows[0], "id": "gone", "audio": str(tmp_path / "missing.wav")})
    rows.append({**rows[0], "id": "wordy", "text": "가나다라 " * 200})
    ds = ManifestDataset(rows, processor.tokenizer)
    assert len(ds) == 3
    assert {s["id"]: s["reason"] for s in ds.skipped} == {
        "long": "too_long_audio", "empty": "empty_text", "gone": "missing_audio", "wordy": "too_long_text"}
    assert len(ds) + len(ds.skipped) == len(rows)


def test_offset_segments_and_lazy_audio(corpus, processor, tmp_path):
    from soritune.audio import load_audio, write_wav

    a, b = load_audio(corpus / "u0.wav"), load_audio(corpus / "u1.wav")
    long_path = write_wav(tmp_path / "long.wav", np.concatenate([a, b]))
    rows = [{"id": "seg", "audio": str(long_path), "offset": len(a) / 16000, "duration": len(b) / 16000, "text": "감사합니다"}]
    ds = ManifestDataset(rows, processor.tokenizer)
    seg = ds[0]["audio"]
    assert abs(len(seg) - len(b)) <= 1
    assert np.abs(seg[:len(b) - 1] - b[:len(seg) - 1]).max() < 1e-3
    assert np.allclose(load_segment(str(long_path), 0.0, len(a) / 16000)[:100], a[:100], atol=1e-4)
    assert not hasattr(ds, "audios")  # nothing decoded up front


def test_length_grouped_batches_are_deterministic_and_grouped():
    frames = [100] * 7 + [200] * 9 + [300] * 2
    b1 = length_grouped_batches(frames, 4, seed=3, epoch=0)
    assert b1 == length_grouped_batches(frames, 4, seed=3, epoch=0)
    assert b1 != length_grouped_batches(frames, 4, seed=3, epoch=1)
    assert sorted(i for b in b1 for i in b) == list(range(len(frames)))
    pure = [b for b in b1 if len({frames[i] for i in b}) == 1]
    assert len(pure) >= 3  # 1 full batch of 100s, 2 of 200s
    flat = length_grouped_batches(frames, 4, seed=3, epoch=0, group_by_length=False)
    assert sorted(i for b in flat for i in b) == list(range(len(frames)))
