"""AI-Hub lecture speech (한국어 대학 강의 데이터 and sets shaped like it): one JSON label per utterance.

Label keys carry numeric prefixes (`01_dataset`, `1_identifier`); they are stripped (`^\\d+_`)
at every depth before reading. The transcript is `transcription.text` (ETRI marks; spelling side
first unless `pron_first`). Audio (16 kHz wav, or any format soritune reads) is paired with its
label by file stem anywhere under ROOT; when a stem has several audio files, the one whose folders
share most names with the label's wins. `id` is the label's stem.

Manifest fields kept from the label: `speaker` (speakerinfo.id), `category` (dataset.category),
`lectureinfo` {city, university_type, major_category, collection_type} and `speakerinfo`
{gender, age, role, dialect, ...} as nested objects. Split: folders named like Training / train /
훈련 -> train, Validation / valid / dev / 검증 -> dev, Test / 테스트 -> test; otherwise train
(use `--split random` for sets without official splits). Audio files without a label are not
inputs; their count is reported as `unpaired_audio`.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any, Iterator

from soritune.data.corpora.base import AUDIO_SUFFIXES, Corpus, Item, ItemError, Label, raw_repr
from soritune.data.encoding import EncodingError, decode_text
from soritune.errors import SoritunError

_PREFIX = re.compile(r"^\d+_")
_SPLIT_WORDS = (
    ("dev", re.compile(r"valid|^dev$|검증", re.I)),
    ("test", re.compile(r"^test$|^\d*\.?test|테스트", re.I)),
    ("train", re.compile(r"train|훈련|학습", re.I)),
)


def strip_prefixes(obj: Any) -> Any:
    """Remove `^\\d+_` from every key, recursively (`{"01_dataset": {"1_id": 1}}` -> `{"dataset": {"id": 1}}`)."""
    if isinstance(obj, dict):
        return {_PREFIX.sub("", str(k)): strip_prefixes(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [strip_prefixes(v) for v in obj]
    return obj


def split_of(rel_parts: tuple[str, ...]) -> str:
    for part in rel_parts:
        for split, pattern in _SPLIT_WORDS:
            if pattern.search(part):
                return split
    return "train"


def _pick(candidates: list[str], label_parts: set[str]) -> str:
    if len(candidates) == 1:
        return candidates[0]
    return max(candidates, key=lambda p: len(label_parts & set(Path(p).parts)))


def plan(config, notes: dict) -> Iterator[Item]:
    root = Path(config.root)
    if not root.is_dir():
        raise SoritunError(f"AI-Hub root {root} is not a directory")
    labels: list[str] = []
    audio: dict[str, list[str]] = {}
    for d, dirs, files in os.walk(root):
        dirs.sort()
        for f in sorted(files):
            stem, ext = os.path.splitext(f)
            ext = ext.lower()
            if ext == ".json":
                labels.append(os.path.join(d, f))
            elif ext in AUDIO_SUFFIXES:
                audio.setdefault(stem, []).append(os.path.join(d, f))
    label_stems = set()
    items = []
    for path in labels:
        stem = Path(path).stem
        label_stems.add(stem)
        rel_parts = Path(path).relative_to(root).parts[:-1]
        found = audio.get(stem)
        items.append(Item(stem, split_of(rel_parts), _pick(found, set(Path(path).parts)) if found else None,
                          label_path=path))
    notes["labels"] = len(labels)
    notes["unpaired_audio"] = sum(len(v) for k, v in audio.items() if k not in label_stems)
    return iter(items)


def read_label(item: Item) -> Label:
    path = item.label_path
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise ItemError("missing_text" if isinstance(e, FileNotFoundError) else "unreadable_text", str(e)) from None
    try:
        text = decode_text(data, prefer="utf-8", where=path)[0]
    except EncodingError:
        raise ItemError("bad_encoding", f"{path}: not UTF-8, EUC-KR or CP949", raw_repr(data[:2000])) from None
    try:
        label = strip_prefixes(json.loads(text))
    except json.JSONDecodeError as e:
        raise ItemError("bad_label", f"{path}: not valid JSON ({e.msg}, line {e.lineno})", text[:2000]) from None
    transcription = label.get("transcription") if isinstance(label, dict) else None
    raw = transcription.get("text") if isinstance(transcription, dict) else None
    if not isinstance(raw, str):
        raise ItemError("bad_label", f"{path}: no transcription.text string", text[:2000])
    extra: dict[str, Any] = {}
    dataset = label.get("dataset")
    if isinstance(dataset, dict) and dataset.get("category") is not None:
        extra["category"] = dataset["category"]
    for key in ("lectureinfo", "speakerinfo"):
        if isinstance(label.get(key), dict):
            extra[key] = label[key]
    speaker = extra.get("speakerinfo", {}).get("id")
    if speaker is not None:
        extra["speaker"] = str(speaker)
    return Label(raw, extra)


CORPUS = Corpus(
    name="aihub-lecture",
    splits=("train", "dev"),
    plan=plan,
    read_label=read_label,
    default_norm="etri",
    description="AI-Hub lecture speech: JSON labels (numeric-prefixed keys) + audio paired by stem",
)
