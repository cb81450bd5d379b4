"""Export a manifest to Parquet shards or a Hugging Face `datasets` dataset, streamed.

Memory stays bounded whatever the manifest size: rows are read one at a time and written in
batches of `batch_rows` (pyarrow), a new shard every `shard_size` rows. Two passes over the
manifest: the first fixes the column types (extra metadata keys become typed columns; nested or
mixed-type values become JSON text), the second writes.

The `audio` column:
- without audio: the absolute path (a string);
- `with_audio`, `audio_format="feature"`: datasets' `Audio(sampling_rate=16000)` holding 16 kHz mono
  16-bit WAV bytes of the decoded row (segments with `offset` already cut, so the original file and
  offset move to `audio_path` / `audio_offset`); it decodes to 16 kHz arrays (datasets needs
  torchcodec for that; `soritune.audio.decode_bytes` reads the bytes without it);
- `with_audio`, `audio_format="bytes"`: the original file's raw bytes (no decoding), `audio_path` beside.
Rows whose audio cannot be read are not exported: they go to `OUT.export_errors.jsonl` (beside the
folder) with a reason, and `OUT.export_report.json` counts them (exported + errors == input). Both
sit beside OUT, not in it, so OUT holds only the dataset's files.

Parquet: `OUT/data-00000-of-0000N.parquet`, exactly `shard_size` rows a shard (the last fewer), with
the datasets features in the schema, so `load_dataset("parquet", data_files="OUT/*.parquet")` sees
the Audio feature. hf: `Dataset.save_to_disk` layout (`load_from_disk(OUT)`), about `shard_size`
rows a shard.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Literal

from pydantic import Field

from soritune.audio import SAMPLE_RATE
from soritune.config import StageConfig
from soritune.data.manifest import iter_manifest
from soritune.errors import AudioError, ExportError
from soritune.jsonio import write_json

REPORT_SUFFIX = ".export_report.json"  # beside the output folder: OUT.export_report.json
ERRORS_SUFFIX = ".export_errors.jsonl"  # beside the output folder, only when some rows failed
KNOWN_ORDER = ("id", "audio", "duration", "text", "text_pron", "speaker", "split", "source", "offset")
_OWN_FILES = ("data-*.parquet", "data-*.arrow", "state.json", "dataset_info.json")

Progress = Callable[[int, int], None]


class ExportConfig(StageConfig):
    """What `soritune export-data` does."""

    manifest: Path = Field(description="input manifest (JSONL)")
    out: Path = Field(description="output folder; OUT.export_report.json goes beside it")
    to: Literal["hf", "parquet"] = Field("parquet", description="hf (datasets save_to_disk folder) or parquet (Parquet shards)")
    shard_size: int = Field(10_000, ge=1, description="rows per shard")
    with_audio: bool = Field(False, description="embed the audio (else the `audio` column holds absolute paths)")
    audio_format: Literal["feature", "bytes"] = Field("feature", description="feature: decoded 16 kHz WAV as datasets "
                                                      "Audio; bytes: the raw file")
    batch_rows: int = Field(256, ge=1, description="rows held in memory between writes (bounds memory with audio)")
    overwrite: bool = Field(False, description="replace an earlier export in --out (only its own files are removed)")


@dataclass
class ExportResult:
    """What export did; saved as OUT.export_report.json. exported_rows + sum(errors) == input_rows."""

    input_rows: int
    exported_rows: int
    errors: dict[str, int]  # reason -> rows not exported
    to: str
    out: str
    shards: list[str]  # file names inside `out`
    shard_rows: list[int]
    columns: dict[str, str]  # column -> datasets feature type
    audio_duration_s: float  # seconds of audio exported (from the manifest's durations)
    errors_file: str | None = None
    report: str = ""
    config: dict = field(default_factory=dict)


# ---- pass 1: column types ------------------------------------------------------------------------


def _kind(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "str"
    return "json"


def _merge(a: str | None, b: str | None) -> str | None:
    if a is None or a == b:
        return b if a is None else a
    if b is None:
        return a
    if {a, b} == {"int", "float"}:
        return "float"
    return "json"


def scan_columns(path: str | Path) -> tuple[int, dict[str, str]]:
    """(row count, {column: kind}) for every key but id/audio/duration/text; kinds: str int float bool json."""
    kinds: dict[str, str | None] = {}
    n = 0
    for row in iter_manifest(path, resolve_audio=False):
        n += 1
        for key, value in row.items():
            if key not in ("id", "audio", "duration", "text"):
                kinds[key] = _merge(kinds.get(key), _kind(value))
    order = {k: i for i, k in enumerate(KNOWN_ORDER)}
    keys = sorted(kinds, key=lambda k: (order.get(k, len(order)), k))
    return n, {k: kinds[k] or "str" for k in keys}


def _features(extra: dict[str, str], cfg: ExportConfig):
    from datasets import Audio, Features, Value

    value_of = {"str": "string", "json": "string", "int": "int64", "float": "float64", "bool": "bool"}
    feats = {"id": Value("string")}
    if not cfg.with_audio:
        feats["audio"] = Value("string")
    elif cfg.audio_format == "feature":
        feats["audio"] = Audio(sampling_rate=SAMPLE_RATE)
        feats["audio_path"] = Value("string")
    else:
        feats["audio"] = Value("binary")
        feats["audio_path"] = Value("string")
    feats["duration"] = Value("float64")
    feats["text"] = Value("string")
    for key, kind in extra.items():
        name = _column_name(key, cfg)
        if name in feats:
            raise ExportError(f"{cfg.manifest}: field {key!r} clashes with the exported column {name!r}")
        feats[name] = Value(value_of[kind])
    return Features(feats)


# ---- pass 2: rows -> columns -----------------------------------------------------------------------


class _AudioReader:
    """Decode rows' audio to 16 kHz WAV bytes; the last decoded file is cached (segments of one file)."""

    def __init__(self):
        self._path: str | None = None
        self._audio = None

    def wav_bytes(self, path: str, offset: float | None, duration_s: float) -> bytes:
        import soundfile as sf

        from soritune.audio import load_audio

        if path != self._path:
            self._path, self._audio = None, load_audio(path)
            self._path = path
        audio = self._audio
        if offset is not None:
            start = int(round(float(offset) * SAMPLE_RATE))
            end = start + int(round(float(duration_s) * SAMPLE_RATE))
            if start >= len(audio):
                raise AudioError(path, "segment_out_of_range",
                                 f"offset {offset} s is past the end ({len(audio) / SAMPLE_RATE:.3f} s)")
            audio = audio[start:end]
        buf = io.BytesIO()
        sf.write(buf, audio, SAMPLE_RATE, format="WAV", subtype="PCM_16")
        return buf.getvalue()


def _raw_bytes(path: str) -> bytes:
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise AudioError(path, "missing") from None
    except OSError as e:
        raise AudioError(path, "unreadable_audio", str(e)) from None
    if not data:
        raise AudioError(path, "empty", "0 bytes")
    return data


def _record(row: dict, audio_abs: str, extra: dict[str, str], cfg: ExportConfig, reader: _AudioReader) -> dict:
    rec = {"id": row["id"], "duration": float(row["duration"]), "text": row["text"]}
    if not cfg.with_audio:
        rec["audio"] = audio_abs
    elif cfg.audio_format == "feature":
        rec["audio"] = {"bytes": reader.wav_bytes(audio_abs, row.get("offset"), row["duration"]),
                        "path": f"{row['id']}.wav"}
        rec["audio_path"] = audio_abs
    else:
        rec["audio"] = _raw_bytes(audio_abs)
        rec["audio_path"] = audio_abs
    for key, kind in extra.items():
        value = row.get(key)
        if kind == "json" and value is not None:
            value = json.dumps(value, ensure_ascii=False)
        elif kind == "float" and value is not None:
            value = float(value)
        rec[_column_name(key, cfg)] = value
    return rec


def _column_name(key: str, cfg: ExportConfig) -> str:
    """`offset` becomes `audio_offset` where the exported audio is already the cut segment."""
    return "audio_offset" if key == "offset" and cfg.with_audio and cfg.audio_format == "feature" else key


class _ShardWriter:
    """Writes tables into numbered shards of `shard_size` rows (Parquet files or Arrow streams)."""

    def __init__(self, folder: Path, schema, shard_size: int, fmt: str):
        self.folder, self.schema, self.shard_size, self.fmt = folder, schema, shard_size, fmt
        self.files: list[Path] = []
        self.rows: list[int] = []
        self._writer = None
        self._sink = None

    def _open(self) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        path = self.folder / f".shard-{len(self.files):05d}.{self.fmt}"
        if self.fmt == "parquet":
            self._writer = pq.ParquetWriter(str(path), self.schema)
        else:
            self._sink = pa.OSFile(str(path), "wb")
            self._writer = pa.ipc.new_stream(self._sink, self.schema)
        self.files.append(path)
        self.rows.append(0)

    def _close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            if self._sink is not None:
                self._sink.close()
            self._writer = self._sink = None

    def write(self, records: list[dict]) -> None:
        import pyarrow as pa

        while records:
            if self._writer is None or self.rows[-1] >= self.shard_size:
                self._close()
                self._open()
            take = records[: self.shard_size - self.rows[-1]]
            records = records[len(take):]
            self._writer.write_table(pa.Table.from_pylist(take, schema=self.schema))
            self.rows[-1] += len(take)

    def finish(self) -> list[Path]:
        if not self.files:
            self._open()  # an empty dataset still has its schema
        self._close()
        return self.files


def beside(out: str | Path, suffix: str) -> Path:
    """OUT.export_report.json for OUT (a folder path, trailing slash or not)."""
    out = Path(out)
    return out.with_name(out.name + suffix)


def _prepare_out(cfg: ExportConfig) -> Path:
    out = Path(cfg.out)
    if out.exists() and not out.is_dir():
        raise ExportError(f"--out {out} exists and is not a folder")
    if out.exists() and any(out.iterdir()):
        if not cfg.overwrite:
            raise ExportError(f"--out {out} is not empty (use --overwrite to replace an earlier export)")
        for pattern in _OWN_FILES:
            for p in out.glob(pattern):
                p.unlink()
        for p in beside(out, REPORT_SUFFIX), beside(out, ERRORS_SUFFIX):
            p.unlink(missing_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    return out


def _save_hf(files: list[Path], out: Path) -> list[str]:
    """Arrow streams -> datasets save_to_disk folder (memory-mapped, no cache copy)."""
    from datasets import Dataset, concatenate_datasets
    from datasets.utils import are_progress_bars_disabled, disable_progress_bars, enable_progress_bars

    parts = [Dataset.from_file(str(f)) for f in files]
    ds = parts[0] if len(parts) == 1 else concatenate_datasets(parts)
    was_disabled = are_progress_bars_disabled()
    disable_progress_bars()
    try:
        ds.save_to_disk(str(out), num_shards=len(files))
    finally:
        if not was_disabled:
            enable_progress_bars()
    return sorted(p.name for p in out.glob("data-*.arrow"))


def export(config: ExportConfig, progress: Progress | None = None) -> ExportResult:
    """Stream `config.manifest` into Parquet shards or a datasets folder; bad audio goes to the errors file."""
    cfg = config
    total, extra = scan_columns(cfg.manifest)
    features = _features(extra, cfg)
    schema = features.arrow_schema
    out = _prepare_out(cfg)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.export-", dir=out.parent))
    errors: dict[str, int] = {}
    errors_path = beside(out, ERRORS_SUFFIX)
    exported, audio_s = 0, 0.0
    reader = _AudioReader()
    base = str(Path(cfg.manifest).parent.resolve())
    try:
        writer = _ShardWriter(tmp, schema, cfg.shard_size, "parquet" if cfg.to == "parquet" else "arrow")
        batch: list[dict] = []
        with open(tmp / "errors.jsonl", "w", encoding="utf-8") as err_f:
            for i, row in enumerate(iter_manifest(cfg.manifest, resolve_audio=False), 1):
                audio_abs = os.path.normpath(os.path.join(base, row["audio"]))
                try:
                    batch.append(_record(row, audio_abs, extra, cfg, reader))
                except AudioError as e:
                    errors[e.reason] = errors.get(e.reason, 0) + 1
                    err_f.write(json.dumps({"id": row["id"], "audio": audio_abs, "reason": e.reason,
                                            "detail": e.detail}, ensure_ascii=False) + "\n")
                    continue
                exported += 1
                audio_s += float(row["duration"])
                if len(batch) >= cfg.batch_rows:
                    writer.write(batch)
                    batch = []
                if progress is not None and i % 100 == 0:
                    progress(i, total)
            writer.write(batch)
        files = writer.finish()
        if progress is not None:
            progress(total, total)
        n = len(files)
        if cfg.to == "parquet":
            shards = []
            for k, f in enumerate(files):
                name = f"data-{k:05d}-of-{n:05d}.parquet"
                os.replace(f, out / name)
                shards.append(name)
            shard_rows = list(writer.rows)
        else:
            shards = _save_hf(files, out)
            shard_rows = _hf_shard_rows(out, shards)
        if errors:
            os.replace(tmp / "errors.jsonl", errors_path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    result = ExportResult(
        input_rows=total, exported_rows=exported, errors=dict(sorted(errors.items())), to=cfg.to, out=str(out),
        shards=shards, shard_rows=shard_rows, columns={k: _feature_name(v) for k, v in features.items()},
        audio_duration_s=round(audio_s, 3), errors_file=str(errors_path) if errors else None,
        report=str(beside(out, REPORT_SUFFIX)), config=cfg.model_dump(mode="json"),
    )
    if exported + sum(errors.values()) != total:  # a bug, never a user error
        raise AssertionError(f"export lost rows: {exported} + {errors} != {total}")
    write_json(result.report, result)
    return result


def _hf_shard_rows(out: Path, shards: list[str]) -> list[int]:
    import pyarrow as pa

    rows = []
    for name in shards:
        with pa.memory_map(str(out / name)) as src:
            rows.append(sum(batch.num_rows for batch in pa.ipc.open_stream(src)))
    return rows


def _feature_name(feature) -> str:
    return getattr(feature, "dtype", None) if type(feature).__name__ == "Value" else type(feature).__name__


run = export
