"""What every corpus reader shares: the work item, the label, and the per-utterance pipeline.

A corpus module lists its utterances cheaply (`plan`: paths and raw bytes, no decoding) and
reads one label (`read_label`). `process_item` then does the same for every corpus, stopping at
the first problem, which becomes the utterance's quarantine reason:

    planning reason (duplicate_id, bad_row, ...) -> label (missing_text, bad_encoding,
    bad_label) -> normalisation (empty, malformed) -> audio (missing_audio, empty_audio,
    unreadable_audio) -> duration (too_short, too_long) -> label_too_long -> conversion.

Audio is not decoded unless asked to convert it: a headerless PCM's duration is its size
(`size // 2` samples, odd lengths tolerated), other formats' comes from the header.
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, NamedTuple

from soritune.audio import PCM_SUFFIXES, SAMPLE_RATE
from soritune.data.encoding import EncodingError, decode_text
from soritune.data.korean_text import normalize_basic, normalize_etri

AUDIO_SUFFIXES = {".wav", ".flac", ".mp3", ".ogg", ".opus", ".m4a", ".webm", ".aac", ".pcm", ".raw"}
WHISPER_SPECIAL_TOKENS = 5  # <|startoftranscript|><|ko|><|transcribe|><|notimestamps|> ... <|endoftext|>


class Item(NamedTuple):
    """One utterance to prepare; small and picklable (shards of these travel to workers)."""

    id: str
    split: str
    audio: str | None  # absolute path, or None when planning found no audio for this label
    text: str | None = None  # a transcript already decoded (CSV / JSONL lists)
    text_bytes: bytes | None = None  # a raw transcript line, decoded in the worker
    label_path: str | None = None  # a file holding the transcript (.txt) or label (.json)
    hint: str | None = None  # encoding hint for text_bytes ('utf-8' / 'cp949')
    extra: dict | None = None  # fields copied into the manifest row
    reason: str | None = None  # set at planning: quarantine without further work
    detail: str | None = None


class Label(NamedTuple):
    raw: str  # the transcript as written (decoded), before normalisation
    extra: dict | None = None  # metadata fields for the manifest row


class ItemError(Exception):
    """An utterance that cannot go into a manifest; `reason` is its quarantine reason."""

    def __init__(self, reason: str, detail: str = "", raw: str | None = None):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason, self.detail, self.raw = reason, detail, raw


@dataclass(frozen=True)
class Settings:
    """The per-utterance options of a prepare run (picklable, sent to every worker)."""

    source: str
    norm: str = "etri"  # 'etri' (KsponSpeech / AI-Hub marks) or 'basic' (clean text only)
    mode: str = "verbatim"
    pron_first: bool = False
    min_duration_s: float = 0.5
    max_duration_s: float = 30.0
    max_label_tokens: int = 448
    convert: str = "none"  # 'none' (reference in place), 'flac' or 'wav' (written under out_dir/audio)
    out_dir: str = "."


def decode_item_text(item: Item) -> str:
    """The raw transcript of an item that carries text or bytes (not a label file)."""
    if item.text is not None:
        return item.text
    if item.text_bytes is not None:
        if item.text_bytes[:2] in (b"\xff\xfe", b"\xfe\xff"):  # a line of a UTF-8/CP949 script cannot be UTF-16
            raise ItemError("bad_encoding", "a UTF-16 byte-order mark inside a line of a script (the file is not "
                            "UTF-16: its lines are split on single bytes)", raw_repr(item.text_bytes))
        try:
            return decode_text(item.text_bytes, prefer=item.hint, where=item.id)[0]
        except EncodingError:
            raise ItemError("bad_encoding", "not UTF-8, EUC-KR or CP949", raw_repr(item.text_bytes)) from None
    raise ItemError("missing_text", "no transcript for this audio")


def read_text_label(path: str) -> str:
    """A per-utterance transcript file (encoding detected); several lines are joined by a space."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise ItemError("missing_text", f"{path} not found") from None
    except OSError as e:
        raise ItemError("unreadable_text", f"{path}: {e}") from None
    try:
        text = decode_text(data, where=path)[0]
    except EncodingError:
        raise ItemError("bad_encoding", f"{path}: not UTF-8, EUC-KR or CP949", raw_repr(data)) from None
    return " ".join(text.splitlines())


def text_label(item: Item) -> Label:
    """The label of a reader whose text is a .txt beside the audio or a text column (kspon, manifest):
    the file's text when the item names one, else the item's own text."""
    if item.label_path is not None:
        return Label(read_text_label(item.label_path))
    return Label(decode_item_text(item))


def raw_repr(data: bytes) -> str:
    """Undecodable bytes shown losslessly for the quarantine (`\\xNN` escapes)."""
    return data.decode("utf-8", "backslashreplace")


def probe_duration_s(path: str | None) -> float:
    """Duration without decoding: PCM from its size, other formats from their header."""
    if path is None:
        raise ItemError("missing_audio", "no audio file pairs with this label")
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise ItemError("missing_audio", f"{path} not found") from None
    except OSError as e:
        raise ItemError("unreadable_audio", f"{path}: {e}") from None
    if not stat.S_ISREG(st.st_mode):
        raise ItemError("unreadable_audio", f"{path}: not a regular file")
    if st.st_size == 0:
        raise ItemError("empty_audio", f"{path}: 0 bytes")
    if not os.access(path, os.R_OK):
        raise ItemError("unreadable_audio", f"{path}: permission denied")
    if os.path.splitext(path)[1].lower() in PCM_SUFFIXES:
        n = st.st_size // 2
        if n == 0:
            raise ItemError("empty_audio", f"{path}: {st.st_size} byte")
        return n / SAMPLE_RATE
    return _header_duration_s(path)


def _header_duration_s(path: str) -> float:
    try:
        import soundfile as sf

        info = sf.info(path)
        frames, sr = info.frames, info.samplerate
    except Exception:  # noqa: BLE001 - not a libsndfile format: decode it
        from soritune.audio import load_audio
        from soritune.errors import AudioError

        try:
            frames, sr = len(load_audio(path)), SAMPLE_RATE
        except AudioError as e:
            raise ItemError("empty_audio" if e.reason == "empty" else "unreadable_audio", str(e)) from None
    if frames <= 0:
        raise ItemError("empty_audio", f"{path}: no samples")
    return frames / sr


_TOKENIZER: Any = None


def _count_tokens(text: str) -> int:
    global _TOKENIZER
    if _TOKENIZER is None:
        from soritune.models.tokenizer import load_tokenizer

        _TOKENIZER = load_tokenizer()
    return len(_TOKENIZER.encode(text, add_special_tokens=False))


def label_tokens_fit(text: str, max_tokens: int) -> bool:
    """Whether `text` + Whisper's special tokens fits the decoder's `max_tokens` positions.

    A byte-level BPE token is at least one UTF-8 byte, so texts whose byte length fits are
    accepted without tokenizing; only the rare long ones load and run the tokenizer.
    """
    budget = max_tokens - WHISPER_SPECIAL_TOKENS
    if len(text) * 4 <= budget or len(text.encode("utf-8")) <= budget:
        return True
    return _count_tokens(text) <= budget


def _safe_name(utt_id: str) -> str:
    parts = [re.sub(r"[^\w.\-]", "_", p) for p in utt_id.replace("\\", "/").split("/")]
    return "/".join(p for p in parts if p not in ("", ".", ".."))


def convert_audio(item: Item, s: Settings) -> tuple[str, float]:
    """Decode and write 16 kHz mono 16-bit FLAC/WAV under out_dir/audio/SPLIT/ (atomically)."""
    import soundfile as sf

    from soritune.audio import load_audio
    from soritune.errors import AudioError

    try:
        audio = load_audio(item.audio)
    except AudioError as e:
        raise ItemError("empty_audio" if e.reason == "empty" else "unreadable_audio", str(e)) from None
    rel = f"audio/{item.split}/{_safe_name(item.id)}.{s.convert}"
    dest = Path(s.out_dir) / rel
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.tmp")
    sf.write(str(tmp), audio.clip(-1.0, 1.0), SAMPLE_RATE, format=s.convert.upper(), subtype="PCM_16")
    os.replace(tmp, dest)
    return rel, len(audio) / SAMPLE_RATE


def _quarantine(item: Item, reason: str, detail: str | None, raw: str | None, s: Settings) -> dict:
    if raw is None and item.text is not None:
        raw = item.text
    elif raw is None and item.text_bytes is not None:
        try:
            raw = decode_text(item.text_bytes, prefer=item.hint)[0]
        except EncodingError:
            raw = raw_repr(item.text_bytes)
    row = {"id": item.id, "split": item.split, "reason": reason, "raw_text": raw, "audio": item.audio,
           "source": s.source}
    if detail:
        row["detail"] = detail
    return row


def process_item(item: Item, read_label: Callable[[Item], Label], s: Settings) -> tuple[bool, dict]:
    """(True, manifest row) or (False, quarantine row) for one utterance."""
    if item.reason:
        return False, _quarantine(item, item.reason, item.detail, None, s)
    raw = None
    try:
        label = read_label(item)
        raw = label.raw
        if s.norm == "etri":
            norm = normalize_etri(raw, s.mode, pron_first=s.pron_first)  # type: ignore[arg-type]
        else:
            norm = normalize_basic(raw)
        if not norm.ok:
            raise ItemError(norm.reason or "malformed", f"normalised to {norm.text!r}" if norm.text else "")
        duration_s = probe_duration_s(item.audio)
        if duration_s < s.min_duration_s:
            raise ItemError("too_short", f"{duration_s:.3f} s < {s.min_duration_s} s")
        if duration_s > s.max_duration_s:
            raise ItemError("too_long", f"{duration_s:.3f} s > {s.max_duration_s} s")
        for side in {norm.text, norm.text_pron}:
            if not label_tokens_fit(side, s.max_label_tokens):
                raise ItemError("label_too_long", f"more than {s.max_label_tokens} decoder tokens")
        audio = item.audio
        if s.convert != "none":
            audio, duration_s = convert_audio(item, s)
    except ItemError as e:
        return False, _quarantine(item, e.reason, e.detail, e.raw if e.raw is not None else raw, s)
    row = {"id": item.id, "audio": audio, "duration": round(duration_s, 4), "text": norm.text}
    if s.norm == "etri":
        row["text_pron"] = norm.text_pron
    row.update(text_raw=raw, split=item.split, source=s.source)
    if item.extra:
        row.update(item.extra)
    if label.extra:
        row.update(label.extra)
    return True, row


@dataclass(frozen=True)
class Corpus:
    """A registered corpus reader."""

    name: str
    splits: tuple[str, ...]  # official split names (a manifest is written for each, even empty)
    plan: Callable[[Any], Iterator[Item]]  # PrepareConfig -> items, in a deterministic order
    read_label: Callable[[Item], Label]
    default_norm: str = "etri"
    description: str = ""
