"""curate: every rule, counts that add up, determinism, speaker-disjoint splits, replay, path rebasing."""

from __future__ import annotations

import json
import os
import random
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from soritune.audio import write_wav
from soritune.config import load_config
from soritune.data.curate import COUNT_KEYS, CurateConfig, CurateError, curate, report_path, split_path
from soritune.data.manifest import read_manifest
from soritune.errors import ConfigError


def _write(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def _row(i: int, text: str = "안녕하세요", duration: float = 2.0, **kw) -> dict:
    return {"id": f"u{i:04d}", "audio": f"audio/u{i:04d}.wav", "duration": duration, "text": text, **kw}


def _ids(path: Path) -> list[str]:
    return [r["id"] for r in read_manifest(path)]


def _read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def test_every_rule_counted_once_and_counts_add_up(tmp_path):
    rows = []
    rows += [_row(i, f"공식 {i} 번", 3.0 + i * 0.01, speaker="a") for i in range(40)]  # candidates to keep
    rows += [dict(_row(0, "중복 아이디 1"))]  # duplicate id
    rows += [_row(100 + i, "짧은 1", 0.2) for i in range(3)]  # too short
    rows += [_row(110 + i, "긴 1", 40.0) for i in range(2)]  # too long
    rows += [_row(120 + i, "숫자 없는 문장") for i in range(4)]  # fails --require
    rows += [_row(130 + i, "금지어 1 포함") for i in range(2)]  # hits --exclude
    rows += [_row(140 + i, "화자 1", speaker="b") for i in range(3)]  # fails --where speaker!=b
    rows += [dict(_row(150 + i, "공식 0 번"), audio="audio/u0000.wav") for i in range(2)]  # text+audio duplicates
    _write(tmp_path / "in.jsonl", rows)
    cfg = CurateConfig(
        manifest=tmp_path / "in.jsonl", out=tmp_path / "out" / "cur.jsonl", min_duration_s=0.5, max_duration_s=30,
        require=["[0-9A-Za-z]"], exclude=["금지어"], where=["speaker!=b"], dedupe=True, trim_percentile=5,
        sample=20, seed=1, dropped=tmp_path / "out" / "dropped.jsonl",
    )
    res = curate(cfg)
    # 40 candidates + 2 duplicates survive the row rules; dedupe takes 2; trim 5% of 40 = 2 a side; sample 20 of 36
    expected = {"kept": 20, "duplicate_id": 1, "dropped_by_duration": 5, "dropped_by_regex": 6,
                "dropped_by_field": 3, "deduplicated": 2, "trimmed_percentile": 4, "not_sampled": 16}
    assert res.counts == expected
    assert set(res.counts) == set(COUNT_KEYS)
    assert sum(res.counts.values()) == res.input_rows == len(rows)
    assert res.details["duration_too_short"] == 3 and res.details["duration_too_long"] == 2
    assert res.details["regex_require"] == 4 and res.details["regex_exclude"] == 2

    report = json.loads(report_path(cfg.out).read_text(encoding="utf-8"))
    assert report_path(cfg.out).name == "cur.curate_report.json"
    assert report["counts"] == expected and report["input_rows"] == len(rows)

    dropped = _read_jsonl(tmp_path / "out" / "dropped.jsonl")
    assert Counter(d["reason"] for d in dropped) == {k: v for k, v in expected.items() if k != "kept"}
    assert all(d["reason_detail"] for d in dropped)
    kept_ids = _ids(cfg.out)
    assert len(kept_ids) == 20 and not set(kept_ids) & {d["id"] for d in dropped if d["reason"] != "duplicate_id"}
    # the trimmed rows are the 2 shortest and 2 longest of the 40 candidates
    trimmed = sorted(d["id"] for d in dropped if d["reason"] == "trimmed_percentile")
    assert trimmed == ["u0000", "u0001", "u0038", "u0039"]


def test_formula_subset_keeps_digits_or_latin(tmp_path):
    texts = ["삼 더하기 사는 칠", "3 더하기 4는 7", "AI 모델", "그래프의 x축", "그냥 이야기", "퍼센트 50%", "ㅋㅋ"]
    _write(tmp_path / "in.jsonl", [_row(i, t) for i, t in enumerate(texts)])
    res = curate(CurateConfig(manifest=tmp_path / "in.jsonl", out=tmp_path / "f.jsonl", require=["[0-9A-Za-z]"]))
    kept = [r["text"] for r in read_manifest(tmp_path / "f.jsonl")]
    assert kept == [t for t in texts if any(c.isascii() and c.isalnum() for c in t)]
    assert res.counts["dropped_by_regex"] == len(texts) - len(kept)


def test_where_equal_not_equal_nested_and_json_values(tmp_path):
    rows = [
        _row(0, speaker="s1", lecture={"major": "math"}, verified=True, year=2021),
        _row(1, speaker="s2", lecture={"major": "bio"}, verified=False, year=2022),
        _row(2, speaker="s1", lecture={"major": "math"}, verified=True, year=2022),
        _row(3, lecture={"major": "math"}),  # no speaker, no verified, no year
    ]
    _write(tmp_path / "in.jsonl", rows)

    def kept(*where):
        out = tmp_path / f"w{len(list(tmp_path.glob('w*.jsonl')))}.jsonl"
        curate(CurateConfig(manifest=tmp_path / "in.jsonl", out=out, where=list(where)))
        return _ids(out)

    assert kept("lecture.major=math") == ["u0000", "u0002", "u0003"]
    assert kept("speaker!=s1") == ["u0001", "u0003"]  # a missing field is "not equal"
    assert kept("verified=true", "year=2022") == ["u0002"]
    assert kept("speaker=s1", "lecture.major!=math") == []


def test_trim_percentile_drops_exact_tails(tmp_path):
    durations = [round(1 + i * 0.1, 2) for i in range(200)]
    random.Random(0).shuffle(durations)
    _write(tmp_path / "in.jsonl", [_row(i, duration=d) for i, d in enumerate(durations)])
    res = curate(CurateConfig(manifest=tmp_path / "in.jsonl", out=tmp_path / "t.jsonl", trim_percentile=1))
    kept = sorted(r["duration"] for r in read_manifest(tmp_path / "t.jsonl"))
    assert kept == sorted(durations)[2:-2]
    assert res.counts["trimmed_percentile"] == 4
    assert res.trim["min_kept_s"] == kept[0] and res.trim["max_kept_s"] == kept[-1]


def test_stratified_sample_is_proportional_deterministic_and_ordered(tmp_path):
    lengths = list(range(1, 1001))  # distinct text lengths: decile b holds lengths 100b+1 .. 100b+100
    random.Random(0).shuffle(lengths)
    rows = [_row(i, "가" * n) for i, n in enumerate(lengths)]
    _write(tmp_path / "in.jsonl", rows)

    def run(seed, name, **kw):
        res = curate(CurateConfig(manifest=tmp_path / "in.jsonl", out=tmp_path / name, sample=100, seed=seed, **kw))
        return res, (tmp_path / name).read_bytes()

    res_a, bytes_a = run(7, "a.jsonl")
    _, bytes_b = run(7, "b.jsonl")
    _, bytes_c = run(8, "c.jsonl")
    assert bytes_a == bytes_b  # same seed: identical output
    assert bytes_a != bytes_c
    assert res_a.counts == {**{k: 0 for k in COUNT_KEYS}, "kept": 100, "not_sampled": 900}
    sampled = read_manifest(tmp_path / "a.jsonl")
    assert Counter((len(r["text"]) - 1) // 100 for r in sampled) == {b: 10 for b in range(10)}
    assert [(s["min_chars"], s["max_chars"]) for s in res_a.strata] == [(100 * b + 1, 100 * b + 100) for b in range(10)]
    ids = [r["id"] for r in sampled]
    assert ids == sorted(ids)  # input order kept

    res_u, _ = run(7, "u.jsonl", stratify="none")
    assert res_u.counts["kept"] == 100 and res_u.strata is None


def test_sample_larger_than_input_keeps_all(tmp_path):
    _write(tmp_path / "in.jsonl", [_row(i) for i in range(5)])
    res = curate(CurateConfig(manifest=tmp_path / "in.jsonl", out=tmp_path / "o.jsonl", sample=50))
    assert res.counts["kept"] == 5 and res.counts["not_sampled"] == 0


def test_dedupe_same_audio_by_path_and_by_content(tmp_path):
    audio = tmp_path / "audio"
    tone = (0.2 * np.sin(np.arange(8000) * 0.1)).astype(np.float32)
    write_wav(audio / "a.wav", tone)
    shutil.copy(audio / "a.wav", audio / "a_copy.wav")  # same bytes, other name
    write_wav(audio / "b.wav", tone * 0.5)  # same size, other bytes
    write_wav(audio / "long.wav", np.zeros(32000, dtype=np.float32))
    rows = [
        {"id": "r0", "audio": "audio/a.wav", "duration": 0.5, "text": "하나"},
        {"id": "r1", "audio": "audio/a.wav", "duration": 0.5, "text": "하나"},  # exact duplicate
        {"id": "r2", "audio": "./audio/../audio/a.wav", "duration": 0.5, "text": "둘"},  # same audio, other text
        {"id": "r3", "audio": "audio/a_copy.wav", "duration": 0.5, "text": "하나"},  # same bytes
        {"id": "r4", "audio": "audio/b.wav", "duration": 0.5, "text": "하나"},  # different audio: kept
        {"id": "r5", "audio": "audio/long.wav", "duration": 1.0, "offset": 0.0, "text": "셋"},
        {"id": "r6", "audio": "audio/long.wav", "duration": 1.0, "offset": 1.0, "text": "셋"},  # other segment
        {"id": "r7", "audio": "audio/long.wav", "duration": 1.0, "offset": 1.0, "text": "넷"},  # same segment
    ]
    _write(tmp_path / "in.jsonl", rows)
    by_path = curate(CurateConfig(manifest=tmp_path / "in.jsonl", out=tmp_path / "p.jsonl", dedupe=True))
    assert _ids(tmp_path / "p.jsonl") == ["r0", "r3", "r4", "r5", "r6"]  # without reading files, a copy is new audio
    assert by_path.counts["deduplicated"] == 3
    res = curate(CurateConfig(manifest=tmp_path / "in.jsonl", out=tmp_path / "d.jsonl", dedupe=True,
                              dedupe_content=True, dropped=tmp_path / "dropped.jsonl"))
    assert _ids(tmp_path / "d.jsonl") == ["r0", "r4", "r5", "r6"]
    assert res.counts["deduplicated"] == 4
    assert res.details["dedupe_text_audio"] == 2 and res.details["dedupe_same_audio"] == 2
    details = {d["id"]: d["reason_detail"] for d in _read_jsonl(tmp_path / "dropped.jsonl")}
    assert "'r0'" in details["r1"] and "'r0'" in details["r3"] and "'r6'" in details["r7"]


def test_speaker_split_is_disjoint_complete_and_deterministic(tmp_path):
    rng = random.Random(3)
    rows = []
    for s in range(30):
        for _ in range(rng.randint(1, 12)):
            rows.append(_row(len(rows), f"문장 {len(rows)}", speaker=f"spk{s}"))
    for _ in range(20):
        rows.append(_row(len(rows), "화자 없음 1"))  # no speaker: split by id
    _write(tmp_path / "in.jsonl", rows)
    out = tmp_path / "sp" / "cur.jsonl"
    res = curate(CurateConfig(manifest=tmp_path / "in.jsonl", out=out, speaker_split="8:1:1", seed=5))
    parts = {n: read_manifest(split_path(out, n)) for n in ("train", "dev", "test")}
    assert split_path(out, "dev").name == "cur_dev.jsonl"
    speakers = {n: {r["speaker"] for r in p if "speaker" in r} for n, p in parts.items()}
    assert not speakers["train"] & speakers["dev"] and not speakers["train"] & speakers["test"]
    assert not speakers["dev"] & speakers["test"]
    all_ids = [r["id"] for p in parts.values() for r in p]
    assert sorted(all_ids) == sorted(r["id"] for r in rows)
    assert all(r["split"] == n for n, p in parts.items() for r in p)
    n = len(rows)
    assert abs(len(parts["train"]) - 0.8 * n) <= 12 and len(parts["dev"]) > 0 and len(parts["test"]) > 0
    assert {n: v["rows"] for n, v in res.splits.items()} == {n: len(p) for n, p in parts.items()}
    assert [r["id"] for r in read_manifest(out)] == [r["id"] for r in rows]  # FILE: all kept, split set

    first = {n: split_path(out, n).read_bytes() for n in parts}
    curate(CurateConfig(manifest=tmp_path / "in.jsonl", out=out, speaker_split="8:1:1", seed=5))
    assert {n: split_path(out, n).read_bytes() for n in parts} == first


def test_replay_adds_rounded_fraction_marked_and_respects_splits(tmp_path):
    _write(tmp_path / "in.jsonl", [_row(i, f"새 데이터 {i}", speaker=f"s{i % 10}") for i in range(45)])
    other = [{"id": f"old{i}", "audio": f"old_audio/o{i}.wav", "duration": 1.5, "text": f"옛 {i}",
              "speaker": f"s{i % 20}"} for i in range(200)]
    other.append(dict(_row(3)))  # id clash with the input: never replayed
    _write(tmp_path / "old" / "other.jsonl", other)
    out = tmp_path / "mix" / "m.jsonl"
    res = curate(CurateConfig(manifest=tmp_path / "in.jsonl", out=out, replay=tmp_path / "old" / "other.jsonl",
                              replay_fraction=0.1, seed=2))
    rows = read_manifest(out, resolve_audio=False)
    replayed = [r for r in rows if r.get("replay")]
    assert len(replayed) == round(0.1 * 45) == res.replay["added"]
    assert res.input_rows == 45 and res.counts["kept"] == 45 and res.output_rows == 45 + len(replayed)
    assert res.replay["excluded_id_clash"] == 1
    for r in replayed:  # audio rebased: valid from the output's folder
        assert os.path.normpath(out.parent / r["audio"]) == os.path.normpath(tmp_path / "old" / "old_audio" / f"o{r['id'][3:]}.wav")

    res2 = curate(CurateConfig(manifest=tmp_path / "in.jsonl", out=tmp_path / "mix2" / "m.jsonl",
                               replay=tmp_path / "old" / "other.jsonl", replay_fraction=0.5, speaker_split="6:2:2", seed=2))
    parts = {n: read_manifest(split_path(tmp_path / "mix2" / "m.jsonl", n)) for n in ("train", "dev", "test")}
    assert sum(bool(r.get("replay")) for r in parts["train"]) == res2.replay["added"] > 0
    assert not any(r.get("replay") for n in ("dev", "test") for r in parts[n])
    held_out = {r["speaker"] for n in ("dev", "test") for r in parts[n] if not r.get("replay")}
    assert not held_out & {r["speaker"] for r in parts["train"]}  # replay rows bring no held-out speaker


def test_replay_shortfall_adds_what_exists(tmp_path):
    _write(tmp_path / "in.jsonl", [_row(i) for i in range(40)])
    _write(tmp_path / "other.jsonl", [dict(_row(1000 + i), id=f"o{i}") for i in range(2)])
    res = curate(CurateConfig(manifest=tmp_path / "in.jsonl", out=tmp_path / "o.jsonl",
                              replay=tmp_path / "other.jsonl", replay_fraction=0.25))
    assert res.replay["requested"] == 10 and res.replay["added"] == 2 and res.output_rows == 42


def test_relative_audio_rebased_absolute_kept(tmp_path):
    (tmp_path / "corpus" / "audio").mkdir(parents=True)
    absolute = str(tmp_path / "elsewhere" / "x.wav")
    _write(tmp_path / "corpus" / "in.jsonl", [_row(0), dict(_row(1), audio=absolute)])
    out = tmp_path / "derived" / "deep" / "o.jsonl"
    curate(CurateConfig(manifest=tmp_path / "corpus" / "in.jsonl", out=out, dropped=tmp_path / "dr" / "d.jsonl"))
    raw = read_manifest(out, resolve_audio=False)
    assert not os.path.isabs(raw[0]["audio"])
    assert os.path.normpath(out.parent / raw[0]["audio"]) == os.path.normpath(tmp_path / "corpus" / "audio" / "u0000.wav")
    assert raw[1]["audio"] == absolute


def test_config_errors_name_the_field(tmp_path):
    _write(tmp_path / "in.jsonl", [_row(0)])
    base = {"manifest": str(tmp_path / "in.jsonl"), "out": str(tmp_path / "o.jsonl")}
    for field, value in [("require", ["[0-9"]), ("where", ["speaker"]), ("speaker_split", "8:1:1:1"),
                         ("stratify", "speaker"), ("min_duration_s", -1)]:
        with pytest.raises(ConfigError, match=field):
            load_config(CurateConfig, base={**base, field: value})
    with pytest.raises(ConfigError, match="min_duration_s"):
        load_config(CurateConfig, base={**base, "min_duration_s": 5, "max_duration_s": 1})
    with pytest.raises(CurateError, match="overwrite an input"):
        curate(CurateConfig(manifest=tmp_path / "in.jsonl", out=tmp_path / "in.jsonl"))


def test_empty_manifest(tmp_path):
    (tmp_path / "in.jsonl").write_text("", encoding="utf-8")
    res = curate(CurateConfig(manifest=tmp_path / "in.jsonl", out=tmp_path / "o.jsonl", sample=3, dedupe=True,
                              trim_percentile=1, speaker_split="8:1:1"))
    assert res.input_rows == 0 and sum(res.counts.values()) == 0
    assert read_manifest(tmp_path / "o.jsonl") == []


def test_cli_curate_and_one_line_error(tmp_path, capsys):
    from soritune.cli import main

    _write(tmp_path / "in.jsonl", [_row(i, "수식 x" if i % 2 else "문장", speaker=f"s{i % 4}") for i in range(20)])
    with pytest.raises(SystemExit) as exc:
        main(["curate", str(tmp_path / "in.jsonl"), "--out", str(tmp_path / "c.jsonl"), "--require", "[0-9A-Za-z]",
              "--where", "speaker!=s3", "--speaker-split", "8:1:1", "--seed", "1",
              "--dropped", str(tmp_path / "dropped.jsonl")])
    assert exc.value.code in (0, None)
    report = json.loads(report_path(tmp_path / "c.jsonl").read_text(encoding="utf-8"))
    assert report["counts"]["kept"] == 5 and report["counts"]["dropped_by_regex"] == 10
    assert report["counts"]["dropped_by_field"] == 5 and report["config"]["where"] == ["speaker!=s3"]
    assert split_path(tmp_path / "c.jsonl", "train").exists()
    capsys.readouterr()

    with pytest.raises(SystemExit) as exc:
        main(["curate", str(tmp_path / "in.jsonl"), "--out", str(tmp_path / "e.jsonl"), "--where", "nonsense"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "where" in err and "Traceback" not in err


def test_curate_writes_its_run_dir_beside_the_output(tmp_path):
    from soritune.data.curate import run_dir
    from soritune.rundir import read_run

    rows = [{"id": f"u{i}", "audio": f"a{i}.wav", "text": "가나다" * (i + 1), "duration": 1.0 + i} for i in range(4)]
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "summary.json").write_text('{"stage": "prepare"}')  # another stage's run: left alone
    res = curate(CurateConfig(manifest=src, out=tmp_path / "out" / "sub.jsonl", max_duration_s=2.5))
    run = read_run(run_dir(res.output))
    assert run.stage == "curate" and run.summary["counts"]["kept"] == 2 and run.config["max_duration_s"] == 2.5
    assert report_path(res.output).is_symlink() and json.loads(report_path(res.output).read_text())["stage"] == "curate"
    assert json.loads((tmp_path / "out" / "summary.json").read_text()) == {"stage": "prepare"}
