"""NVIDIA NeMo ASR manifests: one JSON object a line, `{"audio_filepath", "text", "duration", ...}`.

ROOT is one manifest (every line goes to `train`; `--split random` re-splits it) or a folder of
them, each a split named after its file: `train_manifest.json` -> train, `dev_manifest.json` -> dev,
`test_other.jsonl` -> test_other. Relative `audio_filepath`s are resolved against the manifest's
folder, as NeMo's `get_full_path` does. `duration` is measured again (NeMo's value is kept as
`nemo_duration` beside it); other fields (lang, speaker, pnc, ...) are kept as manifest fields.
Entries that cut a segment out of a longer file (`offset` > 0) are quarantined `segment`: cut them
into files first (soritune prepares whole files, as the generic `manifest` reader does). Rows are
read by the generic reader's `item_from_row`, so columns mean the same in both.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Iterator

from soritune.data.corpora.base import Corpus, Item, text_label
from soritune.data.corpora.generic import item_from_row, plan_jsonl
from soritune.errors import SoritunError

SUFFIXES = (".json", ".jsonl")


def split_name(path: Path) -> str:
    """train_manifest.json -> train; manifest_dev.jsonl -> dev; test_other.json -> test_other."""
    words = [w for w in re.split(r"[_\-.]", path.name[: -len(path.suffix)]) if w and w.lower() != "manifest"]
    return "_".join(words) or "train"


def _items(path: Path, split: str) -> Iterator[Item]:
    def to_item(row, where: str, base: Path) -> Item:
        if not isinstance(row, dict):
            return Item(where, split, None, reason="bad_row", detail=f"{where}: not a JSON object")
        offset = row.pop("offset", None) or 0
        if offset:
            return Item(str(row.get("id") or where), split, str(row.get("audio_filepath") or ""),
                        text=row.get("text") if isinstance(row.get("text"), str) else None, reason="segment",
                        detail=f"{where}: offset {offset} s into {row.get('audio_filepath')} (cut segments into "
                               f"files first)")
        row.setdefault("split", split)
        if row.get("duration") is not None:
            row["nemo_duration"] = row["duration"]
        return item_from_row(row, where, base)

    for item in plan_jsonl(path, to_item):
        yield item if item.reason != "bad_row" or item.split == split else item._replace(split=split)


def plan(config, notes: dict) -> Iterator[Item]:
    root = Path(config.root)
    if root.is_file():
        notes["input"] = "NeMo manifest"
        return _items(root, "train")
    if not root.is_dir():
        raise SoritunError(f"nemo: {root} not found (a NeMo manifest, or a folder of them)")
    files = sorted(p for p in root.iterdir() if p.is_file() and p.suffix.lower() in SUFFIXES)
    if not files:
        raise SoritunError(f"nemo: no *.json / *.jsonl manifest in {root}")
    splits = [split_name(p) for p in files]
    if len(set(splits)) != len(splits):
        raise SoritunError(f"nemo: two manifests in {root} name the same split ({', '.join(p.name for p in files)})")
    notes["input"] = "NeMo manifests: " + ", ".join(f"{p.name} -> {s}" for p, s in zip(files, splits))
    return (item for p, s in zip(files, splits) for item in _items(p, s))


CORPUS = Corpus(
    name="nemo",
    splits=("train",),
    plan=plan,
    read_label=text_label,
    default_norm="basic",
    description="NVIDIA NeMo ASR manifest(s): JSON lines with audio_filepath, text, duration",
)
