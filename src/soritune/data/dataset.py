"""Torch Dataset over a manifest and the Whisper collator (log-mel features + decoder labels).

`ManifestDataset` keeps only the manifest columns in memory and decodes audio lazily (memory does
not grow with the corpus); `offset`/`duration` rows read just their segment. Rows that cannot be
trained on are kept out with a reason in `dataset.skipped` (never dropped silently): among them files
that are missing, directories or undecodable (`unreadable_audio`), checked once when the dataset is
built; a whole file's duration is taken from its audio header, not trusted from the row.

`WhisperCollator` turns items into
    input_features   [B, n_mels, frames]   (frames = 3000, or the batch's bucketed length)
    decoder_input_ids  <|startoftranscript|><|ko|><|transcribe|><|notimestamps|> text
    labels             <|ko|><|transcribe|><|notimestamps|> text <|endoftext|>, padded with -100
(with `timestamp_probability` / `prompt_probability`, some targets carry timestamps or a
`<|startofprev|>` prompt whose labels are -100: see soritune.data.labels)
A log-mel computed on audio zero-padded to N frames equals the first N frames of the 30-s one
(the padding is silence), so the dynamic length changes only how much padding the encoder sees.

`length_grouped_batches` forms batches of similar length: whole batches inside each length bucket,
the remainder sorted by length, then the batch order shuffled; deterministic in (seed, epoch).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from soritune.audio import SAMPLE_RATE, audio_duration_s, load_audio, resample
from soritune.data.labels import LabelBuilder, LabelRecipe, previous_utterances
from soritune.errors import AudioError, SoritunError
from soritune.models.encoder import HOP, MAX_FRAMES, bucket_frames

IGNORE = -100


def load_segment(path: str, offset: float | None = None, duration: float | None = None) -> np.ndarray:
    """16 kHz mono float32 for a whole file, or for [offset, offset + duration) of it."""
    if not offset and duration is None:
        return load_audio(path)
    offset = float(offset or 0.0)
    try:
        import soundfile as sf

        with sf.SoundFile(path) as f:
            sr = f.samplerate
            f.seek(int(round(offset * sr)))
            n = -1 if duration is None else int(round(duration * sr))
            data = f.read(n, dtype="float32", always_2d=True)
        audio = data.mean(axis=1).astype(np.float32)
        return resample(audio, sr, SAMPLE_RATE) if sr != SAMPLE_RATE else audio
    except Exception:  # noqa: BLE001 - containers soundfile cannot seek: decode all, then slice
        audio = load_audio(path)
        start = int(round(offset * SAMPLE_RATE))
        end = None if duration is None else start + int(round(duration * SAMPLE_RATE))
        return audio[start:end]


AUDIO_FAULTS = ("missing_audio", "unreadable_audio")


def check_audio(row: dict, max_audio_s: float) -> tuple[str, str] | None:
    """A reason to skip the row's audio, or None; a whole file's row["duration"] is set from its header."""
    path = Path(row["audio"])
    if not path.exists():
        return "missing_audio", f"{path} does not exist"
    if not path.is_file():
        return "unreadable_audio", f"{path} is not a regular file"
    if row.get("offset") is not None:
        return None  # a segment of a longer recording: its row's offset and duration are the truth
    try:
        duration_s = audio_duration_s(path)
    except (AudioError, OSError, RuntimeError) as e:
        return "unreadable_audio", f"{path}: {e}"
    if duration_s <= 0:
        return "empty_audio", f"{path} holds no samples"
    if duration_s > max_audio_s:
        return "too_long_audio", f"{duration_s:.2f} s in the file (row says {row['duration']}) > {max_audio_s} s"
    row["duration"] = duration_s
    return None


def prompt_ids(tokenizer, language: str = "ko", task: str = "transcribe") -> list[int]:
    """<|startoftranscript|><|LANG|><|TASK|><|notimestamps|> as ids; unknown language -> error."""
    toks = ["<|startoftranscript|>", f"<|{language}|>", f"<|{task}|>", "<|notimestamps|>"]
    ids = [tokenizer.convert_tokens_to_ids(t) for t in toks]
    if ids[1] is None or ids[1] == tokenizer.unk_token_id:
        raise SoritunError(f"language: {language!r} is not a Whisper language code (e.g. ko, en, ja)")
    return ids


def no_speech_id(tokenizer) -> int:
    """Whisper's no-speech token: <|nospeech|> (large-v3 vocabulary) or <|nocaptions|> (earlier ones)."""
    for token in ("<|nospeech|>", "<|nocaptions|>"):
        tid = tokenizer.convert_tokens_to_ids(token)
        if tid is not None and tid != tokenizer.unk_token_id:
            return tid
    raise SoritunError("tokenizer has no Whisper no-speech token (<|nospeech|> or <|nocaptions|>)")


class ManifestDataset:
    """Items {"id", "audio" (float32 16 kHz), "tokens" (prompt + text + <|endoftext|>)}.

    source: a manifest path or rows from read_manifest. text_field: "text" or "text_pron" (rows
    without text_pron fall back to text). Rows longer than max_audio_s or max_label_tokens, with
    empty text or a missing audio file, are skipped with a reason; a row marked `"nonspeech": true`
    keeps its empty text: its target is `<|notimestamps|><|endoftext|>`, teaching the model to write
    nothing on silence, noise or music, and its label after `<|startoftranscript|>` is Whisper's no-speech
    token instead of the language (Whisper's own recipe; item key "no_speech_token"), so the fine-tuned
    model keeps a `no_speech_prob` that the decoder's no-speech rule can act on.
    """

    def __init__(self, source: str | Path | Sequence[dict], tokenizer, *, language: str = "ko",
                 task: str = "transcribe", text_field: str = "text", max_audio_s: float = 30.0,
                 max_label_tokens: int = 448, timestamp_probability: float = 0.0,
                 prompt_probability: float = 0.0, seed: int = 0):
        from soritune.data.manifest import read_manifest

        rows = read_manifest(source) if isinstance(source, (str, Path)) else list(source)
        self.tokenizer = tokenizer
        self.prompt = prompt_ids(tokenizer, language, task)
        self.eot = tokenizer.convert_tokens_to_ids("<|endoftext|>")
        self.skipped: list[dict] = []
        texts = [(r.get(text_field) or r["text"]).strip() for r in rows]
        n_tokens = self._token_counts(texts)
        keep = []
        for row, text, n_tok in zip(rows, texts, n_tokens):
            row = dict(row)  # check_audio sets the duration from the file
            reason = self._reject(row, text, n_tok + len(self.prompt) + 1, max_audio_s, max_label_tokens)
            if reason:
                self.skipped.append({"id": row["id"], "audio": row["audio"], "reason": reason[0], "detail": reason[1]})
            else:
                keep.append((row, text))
        self.ids = [r["id"] for r, _ in keep]
        self.paths = [r["audio"] for r, _ in keep]
        self.texts = [t for _, t in keep]
        self.offsets = np.array([float(r.get("offset") or 0.0) for r, _ in keep], dtype=np.float64)
        self.has_offset = np.array([r.get("offset") is not None for r, _ in keep], dtype=bool)
        self.durations_s = np.array([float(r["duration"]) for r, _ in keep], dtype=np.float64)
        self.nonspeech = np.array([bool(r.get("nonspeech")) for r, _ in keep], dtype=bool)
        self.no_speech_token = no_speech_id(tokenizer)
        self.labels = LabelBuilder(tokenizer, self.prompt, LabelRecipe(timestamp_probability, prompt_probability, seed),
                                   previous_utterances([r for r, _ in keep]), max_label_tokens)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Targets drawn with timestamps / prompts depend on (seed, epoch, index)."""
        self.epoch = int(epoch)

    def _token_counts(self, texts: list[str]) -> list[int]:
        counts: list[int] = []
        for i in range(0, len(texts), 1000):
            chunk = texts[i:i + 1000]
            counts += [len(ids) for ids in self.tokenizer(chunk, add_special_tokens=False)["input_ids"]] if chunk else []
        return counts

    @staticmethod
    def _reject(row: dict, text: str, n_labels: int, max_audio_s: float, max_tokens: int) -> tuple[str, str] | None:
        if not text and not row.get("nonspeech"):
            return "empty_text", "no transcript"
        if row["duration"] <= 0:
            return "empty_audio", "duration is 0"
        if row["duration"] > max_audio_s:
            return "too_long_audio", f"{row['duration']:.2f} s > {max_audio_s} s"
        if n_labels > max_tokens:
            return "too_long_text", f"{n_labels} label tokens > {max_tokens}"
        return check_audio(row, max_audio_s)

    def __len__(self) -> int:
        return len(self.ids)

    def skipped_fraction(self, reasons=AUDIO_FAULTS) -> float:
        """Share of all rows skipped for one of `reasons` (default: the audio could not be read)."""
        total = len(self) + len(self.skipped)
        return sum(s["reason"] in reasons for s in self.skipped) / total if total else 0.0

    def text_ids(self, i: int) -> list[int]:
        return self.tokenizer(self.texts[i], add_special_tokens=False)["input_ids"]

    def tokens(self, i: int) -> list[int]:
        return self.prompt + self.text_ids(i) + [self.eot]

    def target(self, i: int) -> tuple[list[int], int]:
        """(tokens, prompt_len) of the epoch's drawn target; plain tokens when both probabilities are 0."""
        if not self.labels.recipe.active:
            return self.tokens(i), 0
        return self.labels.build(i, self.epoch, self.text_ids, float(self.durations_s[i]))

    def audio(self, i: int) -> np.ndarray:
        if self.has_offset[i]:
            return load_segment(self.paths[i], self.offsets[i], self.durations_s[i])
        return load_segment(self.paths[i])

    def __getitem__(self, i: int) -> dict[str, Any]:
        tokens, prompt_len = self.target(i)
        item = {"id": self.ids[i], "audio": self.audio(i), "tokens": tokens, "prompt_len": prompt_len,
                "text": self.texts[i]}
        if self.nonspeech[i]:
            item["no_speech_token"] = self.no_speech_token
        return item

    def skipped_counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for s in self.skipped:
            out[s["reason"]] = out.get(s["reason"], 0) + 1
        return out


@dataclass
class WhisperCollator:
    """Pad a list of dataset items into model inputs (see the module docstring)."""

    feature_extractor: Any
    pad_token_id: int
    dynamic_length: bool = True
    bucket_s: float = 1.0
    augment: Any = None  # a soritune.data.augment.Augmenter; used only for batches given augment_rngs


    def frames_for(self, n_samples: int) -> int:
        return bucket_frames(n_samples, self.bucket_s) if self.dynamic_length else MAX_FRAMES

    def __call__(self, items: list[dict], pad_frames: int | None = None,
                 augment_rngs: Sequence[np.random.Generator] | None = None) -> dict[str, Any]:
        """augment_rngs: one generator per item (training batches): augment audio and features."""
        import torch

        if not items:
            raise ValueError("WhisperCollator: empty batch")
        audios = [np.asarray(it["audio"], dtype=np.float32) for it in items]
        augment = self.augment if augment_rngs is not None else None
        if augment is not None:
            audios = [augment.audio(a, r) for a, r in zip(audios, augment_rngs)]
        # never cut audio: a manifest duration that rounds low still gets all its frames
        frames = max(pad_frames or 0, max(self.frames_for(len(a)) for a in audios))
        feats = self.feature_extractor(audios, sampling_rate=SAMPLE_RATE, padding="max_length",
                                       max_length=frames * HOP, return_tensors="np").input_features
        if augment is not None:
            for row, (a, r) in enumerate(zip(audios, augment_rngs)):
                augment.features(feats[row], r, -(-len(a) // HOP))
        seqs = [it["tokens"] for it in items]
        width = max(len(s) for s in seqs) - 1
        dec = torch.full((len(seqs), width), self.pad_token_id, dtype=torch.long)
        labels = torch.full((len(seqs), width), IGNORE, dtype=torch.long)
        for row, s in enumerate(seqs):
            dec[row, :len(s) - 1] = torch.tensor(s[:-1])
            labels[row, :len(s) - 1] = torch.tensor(s[1:])
            labels[row, :items[row].get("prompt_len", 0)] = IGNORE  # previous-text prompt: no loss
            if items[row].get("no_speech_token") is not None:  # after <|startoftranscript|>: no speech here
                labels[row, items[row].get("prompt_len", 0)] = items[row]["no_speech_token"]
        return {"input_features": torch.from_numpy(np.ascontiguousarray(feats)), "decoder_input_ids": dec,
                "labels": labels, "ids": [it["id"] for it in items]}


def length_grouped_batches(frames: Sequence[int], batch_size: int, seed: int, epoch: int, *,
                           group_by_length: bool = True) -> list[list[int]]:
    """Index batches for one epoch; identical for identical (frames, batch_size, seed, epoch)."""
    rng = np.random.default_rng([seed, epoch])
    n = len(frames)
    order = rng.permutation(n)
    if not group_by_length:
        return [order[i:i + batch_size].tolist() for i in range(0, n, batch_size)]
    frames = np.asarray(frames)
    batches: list[list[int]] = []
    rest: list[int] = []
    for value in np.unique(frames):
        members = order[frames[order] == value]
        cut = len(members) - len(members) % batch_size
        batches += [members[i:i + batch_size].tolist() for i in range(0, cut, batch_size)]
        rest += members[cut:].tolist()
    rest.sort(key=lambda i: (frames[i], i))
    batches += [rest[i:i + batch_size] for i in range(0, len(rest), batch_size)]
    perm = rng.permutation(len(batches))
    return [batches[i] for i in perm]
