"""export: Parquet shards and datasets folders, with and without audio, streamed, errors accounted for."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from soritune.audio import SAMPLE_RATE, decode_bytes, load_audio, write_wav
from soritune.data.export import ExportConfig, ExportError, beside, export, scan_columns


def _tone(n: int, freq: float) -> np.ndarray:
    return (0.3 * np.sin(2 * np.pi * freq * np.arange(n) / SAMPLE_RATE)).astype(np.float32)


@pytest.fixture
def corpus(tmp_path):
    """7 wav rows (one a segment of a longer file), one .pcm row, one missing file; metadata of mixed types."""
    audio = tmp_path / "corpus" / "audio"
    rows = []
    for i in range(6):
        write_wav(audio / f"a{i}.wav", _tone(1600 * (i + 1), 200 + 50 * i))
        rows.append({"id": f"u{i}", "audio": f"audio/a{i}.wav", "duration": 0.1 * (i + 1), "text": f"문장 {i}",
                     "speaker": f"s{i % 3}", "lecture": {"major": "math", "n": i} if i % 2 else None,
                     "score": i if i < 3 else i + 0.5, "verified": bool(i % 2)})
    write_wav(audio / "long.wav", _tone(3 * SAMPLE_RATE, 440))
    rows.append({"id": "seg", "audio": "audio/long.wav", "duration": 0.5, "offset": 1.0, "text": "구간"})
    pcm = (_tone(4000, 300) * 32767).astype("<i2")
    (audio / "raw.pcm").write_bytes(pcm.tobytes())
    rows.append({"id": "pcm", "audio": "audio/raw.pcm", "duration": 0.25, "text": "피씨엠"})
    rows.append({"id": "gone", "audio": "audio/missing.wav", "duration": 1.0, "text": "없음"})
    path = tmp_path / "corpus" / "m.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path, rows


def _read_parquet(folder: Path):
    import pyarrow.parquet as pq

    files = sorted(folder.glob("data-*.parquet"))
    return files, [pq.read_table(f) for f in files]


def test_scan_columns_types(corpus):
    path, rows = corpus
    n, kinds = scan_columns(path)
    assert n == len(rows)
    assert kinds == {"speaker": "str", "offset": "float", "lecture": "json", "score": "float", "verified": "bool"}


def test_parquet_paths_exact_shards_and_round_trip(corpus, tmp_path):
    path, rows = corpus
    res = export(ExportConfig(manifest=path, to="parquet", out=tmp_path / "pq", shard_size=4, batch_rows=3))
    files, tables = _read_parquet(tmp_path / "pq")
    assert [f.name for f in files] == [f"data-{k:05d}-of-00003.parquet" for k in range(3)] == res.shards
    assert [t.num_rows for t in tables] == [4, 4, 1] == res.shard_rows
    assert res.exported_rows == len(rows) and res.errors == {}  # paths are not checked without audio
    got = [r for t in tables for r in t.to_pylist()]
    assert [r["id"] for r in got] == [r["id"] for r in rows]
    for g, r in zip(got, rows):
        assert g["text"] == r["text"] and g["duration"] == pytest.approx(r["duration"])
        assert Path(g["audio"]).is_absolute() and Path(g["audio"]) == (path.parent / r["audio"]).resolve()
        assert g["lecture"] == (json.dumps(r["lecture"], ensure_ascii=False) if r.get("lecture") else None)
        assert g["score"] == (float(r["score"]) if "score" in r else None)
    report = json.loads(beside(tmp_path / "pq", ".export_report.json").read_text(encoding="utf-8"))
    assert report["exported_rows"] == len(rows) and report["shards"] == res.shards
    assert not any(p.suffix == ".json" for p in (tmp_path / "pq").iterdir())  # OUT holds only the dataset


def test_parquet_with_audio_feature_decodes_to_16k_and_quarantines(corpus, tmp_path):
    import pyarrow.parquet as pq
    from datasets import Audio, Features

    path, rows = corpus
    res = export(ExportConfig(manifest=path, to="parquet", out=tmp_path / "pqa", shard_size=5, with_audio=True,
                              batch_rows=2))
    assert res.errors == {"missing": 1} and res.exported_rows == len(rows) - 1
    assert res.exported_rows + sum(res.errors.values()) == res.input_rows
    errors = [json.loads(x) for x in Path(res.errors_file).read_text(encoding="utf-8").splitlines()]
    assert [(e["id"], e["reason"]) for e in errors] == [("gone", "missing")]

    files, tables = _read_parquet(tmp_path / "pqa")
    features = Features.from_arrow_schema(pq.read_schema(files[0]))
    assert features["audio"] == Audio(sampling_rate=SAMPLE_RATE)
    assert all(rg <= 2 for f in files for rg in [pq.ParquetFile(f).metadata.row_group(i).num_rows
                                                   for i in range(pq.ParquetFile(f).metadata.num_row_groups)])
    got = {r["id"]: r for t in tables for r in t.to_pylist()}
    for r in rows[:6]:
        decoded = decode_bytes(got[r["id"]]["audio"]["bytes"])
        original = load_audio(path.parent / r["audio"])
        assert len(decoded) == len(original) and np.abs(decoded - original).max() < 2e-4
    seg = decode_bytes(got["seg"]["audio"]["bytes"])
    full = load_audio(path.parent / "audio" / "long.wav")
    assert len(seg) == SAMPLE_RATE // 2 and np.abs(seg - full[SAMPLE_RATE: SAMPLE_RATE + SAMPLE_RATE // 2]).max() < 2e-4
    assert got["seg"]["audio_offset"] == 1.0 and "offset" not in got["seg"]
    pcm = decode_bytes(got["pcm"]["audio"]["bytes"])
    assert len(pcm) == 4000 and np.abs(pcm - load_audio(path.parent / "audio" / "raw.pcm")).max() < 2e-4


def test_raw_bytes_format_keeps_file_bytes(corpus, tmp_path):
    path, rows = corpus
    res = export(ExportConfig(manifest=path, to="parquet", out=tmp_path / "raw", with_audio=True, audio_format="bytes"))
    _, tables = _read_parquet(tmp_path / "raw")
    got = {r["id"]: r for t in tables for r in t.to_pylist()}
    for r in rows[:-1]:
        assert got[r["id"]]["audio"] == (path.parent / r["audio"]).read_bytes()
    assert got["seg"]["offset"] == 1.0  # the whole file is stored: the offset still applies
    assert res.errors == {"missing": 1}


def test_hf_folder_loads_with_datasets(corpus, tmp_path):
    import datasets

    path, rows = corpus
    res = export(ExportConfig(manifest=path, to="hf", out=tmp_path / "hf", shard_size=3, with_audio=True))
    ds = datasets.load_from_disk(str(tmp_path / "hf"))
    assert ds.num_rows == res.exported_rows == len(rows) - 1 and sum(res.shard_rows) == ds.num_rows
    assert len(res.shards) == 3 and sorted(p.name for p in (tmp_path / "hf").glob("data-*.arrow")) == res.shards
    assert ds.features["audio"] == datasets.Audio(sampling_rate=SAMPLE_RATE)
    raw = ds.cast_column("audio", datasets.Audio(decode=False))
    assert raw["id"] == [r["id"] for r in rows[:-1]]
    first = decode_bytes(raw[0]["audio"]["bytes"])
    assert np.abs(first - load_audio(path.parent / rows[0]["audio"])).max() < 2e-4

    res2 = export(ExportConfig(manifest=path, to="hf", out=tmp_path / "hf_paths"))
    ds2 = datasets.load_from_disk(str(tmp_path / "hf_paths"))
    assert ds2.features["audio"] == datasets.Value("string") and ds2.num_rows == len(rows) == res2.exported_rows


def test_out_not_empty_needs_overwrite_and_overwrite_leaves_no_stale_shards(corpus, tmp_path):
    path, _ = corpus
    out = tmp_path / "o"
    export(ExportConfig(manifest=path, to="parquet", out=out, shard_size=2))
    assert len(list(out.glob("*.parquet"))) == 5
    with pytest.raises(ExportError, match="not empty"):
        export(ExportConfig(manifest=path, to="parquet", out=out))
    res = export(ExportConfig(manifest=path, to="parquet", out=out, overwrite=True))
    assert sorted(p.name for p in out.glob("*.parquet")) == res.shards == ["data-00000-of-00001.parquet"]


def test_empty_manifest_gives_one_empty_shard(tmp_path):
    import pyarrow.parquet as pq

    (tmp_path / "m.jsonl").write_text("", encoding="utf-8")
    res = export(ExportConfig(manifest=tmp_path / "m.jsonl", to="parquet", out=tmp_path / "e", with_audio=True))
    assert res.input_rows == 0 and res.shard_rows == [0]
    assert pq.read_table(tmp_path / "e" / res.shards[0]).column_names[:2] == ["id", "audio"]


def test_cli_export_data(corpus, tmp_path, capsys):
    from soritune.cli import main

    path, rows = corpus
    with pytest.raises(SystemExit) as exc:
        main(["export-data", str(path), "--to", "parquet", "--out", str(tmp_path / "cli"), "--shard-size", "4",
              "--with-audio"])
    assert exc.value.code in (0, None)
    report = json.loads(beside(tmp_path / "cli", ".export_report.json").read_text(encoding="utf-8"))
    assert report["exported_rows"] == len(rows) - 1 and report["errors"] == {"missing": 1}
    assert report["shard_rows"] == [4, 4]
    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:
        main(["export-data", str(path), "--to", "csv", "--out", str(tmp_path / "bad")])
    assert exc.value.code == 2
    assert "to" in capsys.readouterr().err
