"""The speech-LLM data format: a soritune manifest with four more fields.

One JSON object a line:

| field | required | meaning |
|---|---|---|
| id, audio, duration, text | yes | as in every soritune manifest (`text`: the transcript; "" for non-speech) |
| offset | no | start of the segment in `audio`, seconds |
| task | yes | transcribe, caption or question |
| prompt | no | the user's instruction (default: the task's prompt in `config.DEFAULT_PROMPTS`) |
| response | yes | the answer the model is trained to give |
| references | no | several reference answers (captions) for CIDEr-D; `response` is the first when absent |

`from_asr_manifest` turns any soritune ASR manifest into transcription rows (response = text).
`from_swift_messages` reads the ms-swift format (`messages` with `<audio>` in the user turn, `audios`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from soritune.data.manifest import ManifestError, iter_manifest
from soritune.jsonio import write_jsonl
from soritune.speechllm.config import AUDIO_PLACEHOLDER, DEFAULT_PROMPTS, TASKS


def validate_example(row: dict, where: str) -> dict:
    """Check the speech-LLM fields of a manifest row (the manifest fields are checked by iter_manifest)."""
    if row.get("task") not in TASKS:
        raise ManifestError(f"{where}: field 'task' must be one of {', '.join(TASKS)}, got {row.get('task')!r}")
    if not isinstance(row.get("response"), str) or not row["response"].strip():
        raise ManifestError(f"{where}: field 'response' must be a non-empty string")
    if row.get("prompt") is not None and not isinstance(row["prompt"], str):
        raise ManifestError(f"{where}: field 'prompt' must be a string")
    refs = row.get("references")
    if refs is not None and (not isinstance(refs, list) or not refs or not all(isinstance(r, str) for r in refs)):
        raise ManifestError(f"{where}: field 'references' must be a non-empty list of strings")
    return row


def read_examples(path: str | Path, limit: int | None = None) -> list[dict]:
    """Rows of a speech-LLM JSONL, validated, with `prompt` filled in from the task's default."""
    rows = []
    for i, row in enumerate(iter_manifest(path), 1):
        validate_example(row, f"{path}: row {i}")
        row.setdefault("prompt", None)
        row["prompt"] = row["prompt"] or DEFAULT_PROMPTS[row["task"]]
        rows.append(row)
        if limit is not None and len(rows) >= limit:
            break
    if not rows:
        raise ManifestError(f"{path}: no examples")
    return rows


def references_of(row: dict) -> list[str]:
    return list(row.get("references") or [row["response"]])


def load_clip(row: dict) -> np.ndarray:
    from soritune.data.dataset import load_segment

    duration = row.get("duration") if row.get("offset") is not None else None
    return load_segment(row["audio"], row.get("offset"), duration)


def from_asr_manifest(rows: Iterable[dict], prompt: str | None = None) -> Iterator[dict]:
    """Transcription examples from ASR manifest rows (rows with an empty transcript are skipped by the caller)."""
    for row in rows:
        yield {**row, "task": "transcribe", "prompt": prompt or DEFAULT_PROMPTS["transcribe"], "response": row["text"]}


def convert_asr_manifest(src: str | Path, out: str | Path, prompt: str | None = None) -> dict:
    """Write the transcription JSONL of an ASR manifest; returns counts (empty transcripts are skipped)."""
    rows = list(iter_manifest(src, resolve_audio=True))
    kept = [r for r in from_asr_manifest(rows, prompt) if r["response"].strip()]
    write_jsonl(out, kept)
    return {"rows": len(rows), "written": len(kept), "skipped_empty_text": len(rows) - len(kept)}


def from_swift_messages(record: dict, uid: str, duration_s: float) -> dict:
    """One ms-swift record ({'messages': [...], 'audios': [path]}) as a speech-LLM row (task: question
    unless the caller sets it)."""
    msgs = record.get("messages") or []
    user = next((m["content"] for m in msgs if m.get("role") == "user"), None)
    answer = next((m["content"] for m in msgs if m.get("role") == "assistant"), None)
    audios = record.get("audios") or []
    if user is None or answer is None or len(audios) != 1:
        raise ManifestError(f"{uid}: ms-swift record needs one user turn, one assistant turn and one audio")
    prompt = user.replace(AUDIO_PLACEHOLDER, "").strip() or DEFAULT_PROMPTS["question"]
    return {"id": uid, "audio": audios[0], "duration": duration_s, "text": "", "task": "question",
            "prompt": prompt, "response": answer}


def convert_swift_jsonl(src: str | Path, out: str | Path, task: str = "question") -> dict:
    """Write the speech-LLM JSONL of an ms-swift file (one record a line; audio paths relative to the file
    are resolved; durations are read from the audio). Records that do not fit raise with their line."""
    import json

    from soritune.audio import audio_duration_s

    if task not in TASKS:
        raise ManifestError(f"task must be one of {', '.join(TASKS)}, got {task!r}")
    src = Path(src)
    rows = []
    for lineno, line in enumerate(src.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            raise ManifestError(f"{src}:{lineno}: not valid JSON ({e.msg})") from None
        audios = [str(a if Path(a).is_absolute() else (src.parent / a).resolve()) for a in record.get("audios") or []]
        record = {**record, "audios": audios}
        uid = str(record.get("id") or f"{src.stem}-{lineno}")
        duration = audio_duration_s(audios[0]) if len(audios) == 1 else 0.0
        rows.append({**from_swift_messages(record, f"{src}:{lineno}", duration), "id": uid, "task": task})
    write_jsonl(out, rows)
    return {"rows": len(rows), "written": len(rows), "skipped_empty_text": 0}
