"""Manifest: JSONL, one utterance a line. Reader, writer and validation with line numbers.

Fields: id, audio (path, absolute or relative to the manifest), duration (s), text; optional
text_pron, speaker, split, source, offset (s, for segments of a longer file); any further keys
(e.g. lecture metadata) are kept as they are.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable, Iterator

from soritune.errors import ManifestError

REQUIRED = ("id", "audio", "duration", "text")
OPTIONAL = ("text_pron", "speaker", "split", "source", "offset")


def validate_row(row: Any, where: str) -> dict:
    if not isinstance(row, dict):
        raise ManifestError(f"{where}: expected a JSON object, got {type(row).__name__}")
    for key in REQUIRED:
        if key not in row:
            raise ManifestError(f"{where}: missing field {key!r} (required: {', '.join(REQUIRED)})")
    if not isinstance(row["id"], str) or not row["id"]:
        raise ManifestError(f"{where}: field 'id' must be a non-empty string")
    if not isinstance(row["audio"], str) or not row["audio"]:
        raise ManifestError(f"{where}: field 'audio' must be a non-empty path string")
    if not isinstance(row["text"], str):
        raise ManifestError(f"{where}: field 'text' must be a string")
    if not isinstance(row["duration"], (int, float)) or isinstance(row["duration"], bool) or row["duration"] < 0:
        raise ManifestError(f"{where}: field 'duration' must be a non-negative number of seconds")
    if "offset" in row and row["offset"] is not None and not isinstance(row["offset"], (int, float)):
        raise ManifestError(f"{where}: field 'offset' must be a number of seconds")
    return row


def iter_manifest(path: str | Path, *, resolve_audio: bool = True) -> Iterator[dict]:
    """Stream rows (memory independent of size). With resolve_audio, `audio` becomes absolute."""
    path = Path(path)
    if not path.exists():
        raise ManifestError(f"manifest not found: {path}")
    base = path.parent.resolve()
    with path.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            where = f"{path}:{lineno}"
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise ManifestError(f"{where}: not valid JSON ({e.msg})") from None
            validate_row(row, where)
            if resolve_audio and not Path(row["audio"]).is_absolute():
                row["audio"] = str(base / row["audio"])
            yield row


def read_manifest(path: str | Path, *, resolve_audio: bool = True, limit: int | None = None) -> list[dict]:
    rows = []
    for row in iter_manifest(path, resolve_audio=resolve_audio):
        rows.append(row)
        if limit is not None and len(rows) >= limit:
            break
    seen: set[str] = set()
    for row in rows:
        if row["id"] in seen:
            raise ManifestError(f"{path}: duplicate id {row['id']!r}")
        seen.add(row["id"])
    return rows


def write_manifest(path: str | Path, rows: Iterable[dict]) -> Path:
    """Validate and write atomically."""
    from soritune.jsonio import write_jsonl

    rows = list(rows)
    for i, row in enumerate(rows, 1):
        validate_row(row, f"{path}: row {i}")
    return write_jsonl(path, rows)
