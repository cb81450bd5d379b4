"""Any corpus given as a list (CSV / TSV / JSONL) or as a folder of audio with same-named `.txt`.

List files: a header row (CSV/TSV) or one JSON object a line (JSONL). Columns are recognised by
name: audio = audio | audio_path | audio_filepath | path | file | file_name | filename | wav;
text = text | transcript | transcription | sentence | label; optional id, split, speaker,
text_pron. Other columns are kept as manifest fields. Relative audio paths are resolved against
the list file's folder. `id` defaults to the audio path (relative to the list's folder, without
suffix). Durations are always measured (a `duration` column is ignored); lists of segments
(an `offset` column) are refused: cut the segments first.

Folder: every audio file (wav, flac, mp3, ogg, opus, m4a, webm, aac, pcm) is an utterance whose
transcript is the `.txt` with the same path and stem (encoding detected); `id` is the path
relative to the folder, without suffix. A `.txt` without audio is quarantined `missing_audio`,
audio without `.txt` `missing_text`. Split: the `split` column, else `train`.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
from pathlib import Path
from typing import Iterator

from soritune.data.corpora.base import AUDIO_SUFFIXES, Corpus, Item, text_label
from soritune.data.encoding import EncodingError, decode_text
from soritune.data.korean_text import collapse
from soritune.errors import SoritunError

AUDIO_KEYS = ("audio", "audio_path", "audio_filepath", "path", "file", "file_name", "filename", "wav")
TEXT_KEYS = ("text", "transcript", "transcription", "sentence", "label")
IGNORED = {"duration", "duration_s", "source"}
RESERVED_SPLITS = {"quarantine", "prepare_report", "prepare_config"}
_SPLIT_NAME = re.compile(r"[A-Za-z0-9_\-]{1,64}")


def _key(row: dict, names: tuple[str, ...]) -> str | None:
    for name in names:
        if name in row:
            return name
    return None


def item_from_row(row: dict, where: str, base: Path) -> Item:
    if not isinstance(row, dict):
        return Item(where, "train", None, reason="bad_row", detail=f"{where}: not an object")
    if "offset" in row:
        raise SoritunError(f"{where}: an 'offset' column (segments of longer files) is not supported; "
                           "cut the segments into files first")
    akey, tkey = _key(row, AUDIO_KEYS), _key(row, TEXT_KEYS)
    audio = str(row.get(akey) or "").strip() if akey else ""
    split = str(row.get("split") or "train").strip() or "train"
    if not _SPLIT_NAME.fullmatch(split) or split in RESERVED_SPLITS:
        return Item(str(row.get("id") or where), "train", None, reason="bad_row",
                    detail=f"{where}: split {split!r} is not a plain name (letters, digits, _ -) or is reserved")
    text = row.get(tkey) if tkey else None
    rid = str(row.get("id") or "").strip()
    if not audio:
        return Item(rid or where, split, None, text=text if isinstance(text, str) else None, reason="bad_row",
                    detail=f"{where}: no audio path (columns tried: {', '.join(AUDIO_KEYS)})")
    path = Path(audio) if Path(audio).is_absolute() else base / audio
    if not rid:
        try:
            rid = path.relative_to(base).with_suffix("").as_posix()
        except ValueError:
            rid = path.stem
    if not isinstance(text, str):
        return Item(rid, split, str(path), reason="bad_row" if text is not None else "missing_text",
                    detail=f"{where}: no text (columns tried: {', '.join(TEXT_KEYS)})")
    extra = {k: v for k, v in row.items() if k not in {akey, tkey, "id", "split"} | IGNORED and k}
    if isinstance(extra.get("text_pron"), str):
        extra["text_pron"] = collapse(extra["text_pron"])
    return Item(rid, split, str(path), text=text, extra=extra or None)


def plan_jsonl(path: Path, to_item=None) -> Iterator[Item]:
    """Items of a JSON-lines list; `to_item(row, where, base)` (default item_from_row) reads a row."""
    to_item = to_item or item_from_row
    with path.open("rb") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            where = f"{path.name}:{lineno}"
            try:
                row = json.loads(decode_text(line, prefer="utf-8", where=where)[0])
            except (json.JSONDecodeError, EncodingError) as e:
                yield Item(where, "train", None, text=line.decode("utf-8", "backslashreplace").rstrip(),
                           reason="bad_row", detail=f"{where}: {e}")
                continue
            yield to_item(row, where, path.parent)


def _plan_table(path: Path) -> Iterator[Item]:
    try:
        text = decode_text(path.read_bytes(), where=str(path))[0]
    except EncodingError as e:
        raise SoritunError(str(e)) from None
    delimiter = "\t" if path.suffix.lower() in (".tsv", ".tab") else ","
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter)
    fields = [f.strip() for f in reader.fieldnames or []]
    if _key(dict.fromkeys(fields), AUDIO_KEYS) is None:
        raise SoritunError(f"{path}: no audio column in header {fields} (expected one of {', '.join(AUDIO_KEYS)})")
    if _key(dict.fromkeys(fields), TEXT_KEYS) is None:
        raise SoritunError(f"{path}: no text column in header {fields} (expected one of {', '.join(TEXT_KEYS)})")
    reader.fieldnames = fields
    for i, row in enumerate(reader, 2):
        if None in row:  # more cells than header fields
            yield Item(f"{path.name}:{i}", "train", None, reason="bad_row",
                       text=delimiter.join(str(v) for v in row.values() if isinstance(v, str)),
                       detail=f"{path.name}:{i}: more cells than header fields")
            continue
        yield item_from_row({k: v for k, v in row.items()}, f"{path.name}:{i}", path.parent)


def _plan_folder(root: Path) -> Iterator[Item]:
    for d, dirs, files in os.walk(root):
        dirs.sort()
        texts, audios = {}, []
        for f in sorted(files):
            stem, ext = os.path.splitext(f)
            if ext.lower() == ".txt":
                texts[stem] = os.path.join(d, f)
            elif ext.lower() in AUDIO_SUFFIXES:
                audios.append((stem, os.path.join(d, f)))
        rel_dir = Path(d).relative_to(root)
        for stem, audio in audios:
            yield Item((rel_dir / stem).as_posix(), "train", audio, label_path=texts.pop(stem, None))
        for stem, txt in texts.items():
            yield Item((rel_dir / stem).as_posix(), "train", None, label_path=txt)


def plan(config, notes: dict) -> Iterator[Item]:
    src = Path(config.root)
    if src.is_dir():
        notes["input"] = "folder of audio + .txt"
        return _plan_folder(src)
    if not src.is_file():
        raise SoritunError(f"manifest input {src} not found (a CSV/TSV/JSONL list or a folder)")
    suffix = src.suffix.lower()
    notes["input"] = suffix.lstrip(".")
    if suffix in (".jsonl", ".json", ".ndjson"):
        return plan_jsonl(src)
    if suffix in (".csv", ".tsv", ".tab"):
        return _plan_table(src)
    raise SoritunError(f"{src}: unknown list format {suffix!r} (use .csv, .tsv or .jsonl, or a folder)")


CORPUS = Corpus(
    name="manifest",
    splits=("train",),
    plan=plan,
    read_label=text_label,
    default_norm="basic",
    description="CSV/TSV/JSONL list, or a folder of audio files with same-named .txt transcripts",
)
