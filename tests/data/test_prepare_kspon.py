"""`prepare kspon`: a KsponSpeech-layout fixture seeded with every kind of defect is fully accounted."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from soritune.data.manifest import read_manifest
from soritune.data.prepare_common import PrepareConfig, run

SR = 16000


def pcm(path: Path, seconds: float, odd: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    n = int(seconds * SR)
    data = (np.sin(np.arange(n) / 7.0) * 8000).astype("<i2").tobytes()
    path.write_bytes(data + (b"\x01" if odd else b""))


def build(root: Path, scripts: str | None) -> dict[str, dict]:
    """A small KsponSpeech tree. Returns {id: {split, reason or None, text, text_pron}} (the truth).

    scripts: None (no .trn: per-utterance .txt), 'utf-8' or 'cp949' (encoding of the .trn files).
    """
    tr = root / "KsponSpeech_01" / "KsponSpeech_0001"
    dev = root / "KsponSpeech_05" / "KsponSpeech_0621"
    ev = root / "KsponSpeech_eval" / "eval_clean"
    eo = root / "KsponSpeech_eval" / "eval_other"
    truth: dict[str, dict] = {}
    script_lines: dict[str, list[bytes]] = {}

    def utt(folder: Path, uid: str, split: str, raw: str | bytes | None, seconds: float | None, *,
            enc: str = "cp949", odd: bool = False, reason: str | None = None, text=None, pron=None,
            in_script: bool = True):
        if seconds is not None:
            pcm(folder / f"{uid}.pcm", seconds, odd)
        raw_bytes = raw if isinstance(raw, bytes) else (raw.encode(enc) if raw is not None else None)
        if raw_bytes is not None:
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"{uid}.txt").write_bytes(raw_bytes + b"\r\n")
        if in_script and raw is not None:
            line_text = raw_bytes if isinstance(raw, bytes) else raw.encode(scripts or "utf-8")
            rel = folder.relative_to(root).as_posix() + f"/{uid}.pcm"
            script_lines.setdefault(split, []).append(rel.encode() + b" :: " + line_text)
        truth[uid] = {"split": split, "reason": reason, "text": text, "pron": pron}

    utt(tr, "KsponSpeech_000001", "train", "b/ (70%)/(칠 십 퍼센트) 확률이라니 아/ (뭐+ 뭔)/(모+ 몬) 소리야 진짜 (100%)(백 프로)가 왜 안돼? n/", 2.0,
        text="70% 확률이라니 아 뭐 뭔 소리야 진짜 100%가 왜 안돼?", pron="칠 십 퍼센트 확률이라니 아 모 몬 소리야 진짜 백 프로가 왜 안돼?")
    utt(tr, "KsponSpeech_000002", "train", "그거+ 그거 (3)/(세) 개 줘", 1.5, enc="utf-8", text="그거 그거 3 개 줘", pron="그거 그거 세 개 줘")
    utt(tr, "KsponSpeech_000003", "train", "뷁 똠방각하 햏", 1.2, text="뷁 똠방각하 햏", pron="뷁 똠방각하 햏")  # CP949-only syllables
    utt(tr, "KsponSpeech_000004", "train", "번호는 [공 일 공] 이야", 1.0, enc="euc-kr", text="번호는 공 일 공 이야", pron="번호는 공 일 공 이야")
    utt(tr, "KsponSpeech_000005", "train", "b/ n/", 1.0, reason="empty")
    utt(tr, "KsponSpeech_000006", "train", "", 1.0, reason="empty")
    utt(tr, "KsponSpeech_000007", "train", "(60)/)육십) 명", 1.0, reason="malformed")
    utt(tr, "KsponSpeech_000008", "train", "너무 짧아", 0.2, reason="too_short")
    utt(tr, "KsponSpeech_000009", "train", "너무 길어", 31.0, reason="too_long")
    utt(tr, "KsponSpeech_000010", "train", "빈 파일", 0.0, reason="empty_audio")
    utt(tr, "KsponSpeech_000011", "train", b"\x80\xff\xfe\x81 bad", 1.0, reason="bad_encoding")
    utt(tr, "KsponSpeech_000012", "train", "소리 없는 라벨", None, reason="missing_audio")
    utt(tr, "KsponSpeech_000013", "train", "홀수 길이 (2)/(두) 개", 1.0, odd=True, text="홀수 길이 2 개", pron="홀수 길이 두 개")
    utt(dev, "KsponSpeech_620001", "dev", "음/ 개발 세트", 1.0, text="음 개발 세트", pron="음 개발 세트")
    utt(ev, "KsponSpeech_E00001", "eval_clean", "평가 *깨끗한 셋", 1.0, enc="utf-8", text="평가 깨끗한 셋", pron="평가 깨끗한 셋")
    utt(eo, "KsponSpeech_E03001", "eval_other", "o/ 다른 셋. 홀수", 0.9, odd=True, text="다른 셋. 홀수", pron="다른 셋. 홀수")
    # 1-byte PCM: zero samples
    (ev / "KsponSpeech_E00002.pcm").write_bytes(b"\x00")
    (ev / "KsponSpeech_E00002.txt").write_bytes("한 바이트".encode("cp949"))
    script_lines.setdefault("eval_clean", []).append(b"KsponSpeech_eval/eval_clean/KsponSpeech_E00002.pcm :: "
                                                     + "한 바이트".encode(scripts or "utf-8"))
    truth["KsponSpeech_E00002"] = {"split": "eval_clean", "reason": "empty_audio"}
    if scripts is None:
        pcm(tr / "KsponSpeech_000014.pcm", 1.0)  # audio without a transcript
        truth["KsponSpeech_000014"] = {"split": "train", "reason": "missing_text"}
    else:
        sd = root / "KsponSpeech_scripts"
        sd.mkdir(parents=True)
        for split, lines in script_lines.items():
            if split == "train":
                bad_line = len(lines) + 1
                lines = lines + [b"this line has no separator", b"", lines[0]]  # malformed, blank, duplicate
            (sd / f"{split}.trn").write_bytes(b"\n".join(lines) + b"\n")
        truth[f"train.trn:{bad_line}"] = {"split": "train", "reason": "malformed"}
        truth["__dup__"] = {"split": "train", "reason": "duplicate_id"}
    return truth


def prepare(root: Path, out: Path, **kw):
    return run(PrepareConfig(corpus="kspon", root=str(root), out=str(out), **kw))


def check_accounting(out: Path, truth: dict[str, dict], result) -> tuple[dict, list[dict]]:
    rows = {}
    for split in ("train", "dev", "eval_clean", "eval_other"):
        for row in read_manifest(out / f"{split}.jsonl"):
            assert row["split"] == split
            rows[row["id"]] = row
    quarantine = [json.loads(line) for line in (out / "quarantine.jsonl").read_text(encoding="utf-8").splitlines()]
    report = json.loads((out / "prepare_report.json").read_text(encoding="utf-8"))
    expected_reasons = Counter(t["reason"] for t in truth.values() if t["reason"])
    assert Counter(q["reason"] for q in quarantine) == expected_reasons
    assert report["reasons"] == dict(expected_reasons)
    assert set(rows) == {k for k, t in truth.items() if not t["reason"]}
    assert len(rows) + len(quarantine) == len(truth) == report["inputs"] == result.inputs
    assert report["kept"] + report["quarantined"] == report["inputs"] and report["accounted"]
    assert sum(s["inputs"] for s in report["splits"].values()) == report["inputs"]
    for s in report["splits"].values():
        assert s["kept"] + sum(s["quarantined"].values()) == s["inputs"]
    for q in quarantine:
        assert q["reason"] and "raw_text" in q and q["id"]
    return rows, quarantine


@pytest.mark.parametrize("scripts", [None, "utf-8", "cp949"])
def test_defective_corpus_fully_accounted(tmp_path, scripts):
    truth = build(tmp_path / "root", scripts)
    result = prepare(tmp_path / "root", tmp_path / "out", shard_size=4)
    rows, quarantine = check_accounting(tmp_path / "out", truth, result)
    for uid, row in rows.items():
        assert row["text"] == truth[uid]["text"] and row["text_pron"] == truth[uid]["pron"], uid
        assert Path(row["audio"]).is_absolute() and Path(row["audio"]).exists()
        assert row["audio"].endswith(f"{uid}.pcm") and row["source"] == "kspon"
        assert row["split"] == truth[uid]["split"]
    # odd-length PCM: size // 2 samples
    assert rows["KsponSpeech_000013"]["duration"] == pytest.approx(16000 / SR)
    assert rows["KsponSpeech_E03001"]["duration"] == pytest.approx(int(0.9 * SR) / SR, abs=1e-4)
    bad = next(q for q in quarantine if q["reason"] == "bad_encoding")
    assert "\\x80" in bad["raw_text"]
    malformed = next(q for q in quarantine if q["id"] == "KsponSpeech_000007")
    assert malformed["raw_text"] == "(60)/)육십) 명"


def test_label_too_long_uses_tokenizer_only_when_needed(tmp_path, monkeypatch):
    root = tmp_path / "root"
    folder = root / "KsponSpeech_01" / "KsponSpeech_0001"
    pcm(folder / "KsponSpeech_000001.pcm", 1.0)
    (folder / "KsponSpeech_000001.txt").write_bytes("짧은 문장".encode("cp949"))
    pcm(folder / "KsponSpeech_000002.pcm", 1.0)
    (folder / "KsponSpeech_000002.txt").write_bytes(("가나다라마바사 " * 20).encode("cp949"))
    from soritune.data.corpora import base

    counted = []
    real = base._count_tokens
    monkeypatch.setattr(base, "_count_tokens", lambda text: counted.append(text) or real(text))
    result = prepare(root, tmp_path / "out", workers=1, max_label_tokens=40)
    assert result.quarantined_by_reason == {"label_too_long": 1}
    assert result.kept_by_split["train"] == 1
    assert counted == ["가나다라마바사 " * 19 + "가나다라마바사"]  # the short text was never tokenized
    assert base.label_tokens_fit("가나다", 40) and not base.label_tokens_fit("가나다라마바사 " * 20, 40)


def test_resume_after_interruption_finishes_without_duplicates(tmp_path, monkeypatch):
    from soritune.data import prepare_common

    truth = build(tmp_path / "root", "utf-8")
    reference = prepare(tmp_path / "root", tmp_path / "ref", shard_size=3, workers=1)
    real = prepare_common.process_shard
    calls = {"n": 0}

    def crashing(task):
        calls["n"] += 1
        if calls["n"] > 2:
            # a worker killed mid-shard leaves a temporary file behind
            (Path(task["shard_dir"]) / f".{task['index']:06d}.train.jsonl.tmp").write_text('{"id": "half')
            raise KeyboardInterrupt
        return real(task)

    monkeypatch.setattr(prepare_common, "process_shard", crashing)
    with pytest.raises(KeyboardInterrupt):
        prepare(tmp_path / "root", tmp_path / "out", shard_size=3, workers=1)
    assert len(list((tmp_path / "out" / ".shards").glob("*.done.json"))) == 2
    assert not (tmp_path / "out" / "train.jsonl").exists()
    monkeypatch.setattr(prepare_common, "process_shard", real)
    result = prepare(tmp_path / "root", tmp_path / "out", shard_size=3, workers=1)
    assert result.shards_resumed == 2 and result.shards == reference.shards
    check_accounting(tmp_path / "out", truth, result)
    for name in ("train", "dev", "eval_clean", "eval_other", "quarantine"):
        a = (tmp_path / "ref" / f"{name}.jsonl").read_text(encoding="utf-8")
        b = (tmp_path / "out" / f"{name}.jsonl").read_text(encoding="utf-8")
        assert a == b, name
    assert not (tmp_path / "out" / ".shards").exists()


def test_changed_settings_do_not_reuse_shards(tmp_path):
    build(tmp_path / "root", None)
    prepare(tmp_path / "root", tmp_path / "out", shard_size=4, keep_shards=True)
    again = prepare(tmp_path / "root", tmp_path / "out", shard_size=4, keep_shards=True)
    assert again.shards_resumed == again.shards
    changed = prepare(tmp_path / "root", tmp_path / "out", shard_size=4, min_duration_s=1.1)
    assert changed.shards_resumed == 0
    assert changed.quarantined_by_reason["too_short"] > again.quarantined_by_reason["too_short"]


def test_parallel_and_serial_outputs_identical(tmp_path):
    build(tmp_path / "root", "cp949")
    prepare(tmp_path / "root", tmp_path / "a", shard_size=2, workers=2)
    prepare(tmp_path / "root", tmp_path / "b", shard_size=50, workers=1)
    for name in ("train", "dev", "eval_clean", "eval_other", "quarantine"):
        assert (tmp_path / "a" / f"{name}.jsonl").read_bytes() == (tmp_path / "b" / f"{name}.jsonl").read_bytes()


def test_random_split_exact_and_seeded(tmp_path):
    from soritune.data.corpora.kspon_fake import write_kspon_tree

    write_kspon_tree(tmp_path / "root", 100, defects=False, sparse=True)
    a = prepare(tmp_path / "root", tmp_path / "a", split="random", ratios=[8, 1, 1], seed=1)
    assert a.kept_by_split == {"train": 80, "dev": 10, "test": 10}
    ids = {s: {r["id"] for r in read_manifest(tmp_path / "a" / f"{s}.jsonl")} for s in ("train", "dev", "test")}
    assert not (ids["train"] & ids["dev"]) and not (ids["dev"] & ids["test"])
    b = prepare(tmp_path / "root", tmp_path / "b", split="random", ratios=[8, 1, 1], seed=1)
    c = prepare(tmp_path / "root", tmp_path / "c", split="random", ratios=[8, 1, 1], seed=2)
    assert (tmp_path / "a" / "dev.jsonl").read_bytes() == (tmp_path / "b" / "dev.jsonl").read_bytes()
    assert {r["id"] for r in read_manifest(tmp_path / "c" / "dev.jsonl")} != ids["dev"]
    assert b.kept_by_split == c.kept_by_split


@pytest.mark.parametrize("fmt", ["flac", "wav"])
def test_convert_writes_16k_audio_relative_to_manifest(tmp_path, fmt):
    import soundfile as sf

    truth = build(tmp_path / "root", None)
    result = prepare(tmp_path / "root", tmp_path / "out", convert=fmt)
    check_accounting(tmp_path / "out", truth, result)
    raw = read_manifest(tmp_path / "out" / "train.jsonl", resolve_audio=False)
    assert all(not Path(r["audio"]).is_absolute() and r["audio"].endswith(f".{fmt}") for r in raw)
    row = next(r for r in read_manifest(tmp_path / "out" / "train.jsonl") if r["id"] == "KsponSpeech_000013")
    info = sf.info(row["audio"])
    assert (info.samplerate, info.channels, info.frames) == (SR, 1, 16000)  # odd byte dropped
    assert row["duration"] == pytest.approx(1.0)


def test_fake_tree_generator_round_trips(tmp_path):
    from soritune.data.corpora.kspon_fake import write_kspon_tree

    tree = write_kspon_tree(tmp_path / "root", 400, script_encoding="cp949", seed=3)
    result = prepare(tmp_path / "root", tmp_path / "out")
    assert result.inputs == sum(tree.counts.values()) == 400
    assert result.quarantined_by_reason == tree.defects and sum(tree.defects.values()) > 0
    assert result.kept_by_split == {s: tree.counts[s] - _quarantined(tmp_path / "out", s) for s in tree.counts}


def _quarantined(out: Path, split: str) -> int:
    return sum(1 for line in (out / "quarantine.jsonl").read_text(encoding="utf-8").splitlines()
               if json.loads(line)["split"] == split)
