"""Decoder targets that keep Whisper's timestamps and prompt-following through fine-tuning.

distil-whisper's recipe (run_distillation.py: `timestamp_probability`, `condition_on_prev_probability`):
each training target is drawn, independently,

- with probability p (`timestamp_probability`) as a timestamped segment instead of plain text:
      <|startoftranscript|><|ko|><|transcribe|><|0.00|> text <|T|><|endoftext|>
  where T is the utterance's duration (manifest `duration`, clamped to 30 s, rounded to 0.02 s);
  otherwise  <|startoftranscript|><|ko|><|transcribe|><|notimestamps|> text <|endoftext|>;
- with probability q (`prompt_probability`) conditioned on previous text:
      <|startofprev|> previous text <|startoftranscript|> ...
  with the loss masked on `<|startofprev|> previous text <|startoftranscript|>` (the model learns to
  *use* the prompt, never to predict it). The previous text is that of the previous utterance of the
  same speaker (`speaker` field) in manifest order, or, for rows without a speaker that are segments of
  one recording (`offset` set), of the previous segment of the same audio file; an utterance with
  none (the first of its speaker, or rows with neither field) gets a random other utterance's text,
  as distil-whisper does for data without context. The prompt keeps at most its last 223 tokens
  (Whisper keeps n_text_ctx // 2 for the prompt) and is shortened further so that the whole sequence
  stays within max_label_tokens; a timestamped target that would not fit falls back to notimestamps.

A row with no text (a non-speech clip) always gets the plain target, `... <|notimestamps|><|endoftext|>`:
a timestamped one would teach an empty segment.

Draws are a pure function of (seed, epoch, utterance index), so a resumed run replays them and
worker processes agree. With p = q = 0 every target is exactly the plain one (no draw changes it).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from soritune.models.tokenizer import MAX_TIMESTAMP_S, timestamp_token_id

MAX_PROMPT_TOKENS = 223  # previous-text tokens after <|startofprev|> (Whisper: n_text_ctx // 2 in all)


def previous_utterances(rows: Sequence[dict]) -> list[int | None]:
    """For each row, the index of the previous row of its speaker (or recording), else None."""
    last: dict[tuple[str, str], int] = {}
    out: list[int | None] = []
    for i, row in enumerate(rows):
        key = _context_key(row)
        out.append(last.get(key) if key else None)
        if key:
            last[key] = i
    return out


def _context_key(row: dict) -> tuple[str, str] | None:
    if row.get("speaker") not in (None, ""):
        return ("speaker", str(row["speaker"]))
    if row.get("offset") is not None:
        return ("audio", str(row["audio"]))
    return None


@dataclass(frozen=True)
class LabelRecipe:
    """How targets are drawn (see the module docstring); all zero = plain targets."""

    timestamp_probability: float = 0.0
    prompt_probability: float = 0.0
    seed: int = 0

    @property
    def active(self) -> bool:
        return self.timestamp_probability > 0 or self.prompt_probability > 0


class LabelBuilder:
    """Token sequence and masked-prefix length of utterance i for an epoch."""

    def __init__(self, tokenizer, prefix: list[int], recipe: LabelRecipe, previous: list[int | None],
                 max_label_tokens: int = 448):
        if len(prefix) != 4:
            raise ValueError("prefix must be <|startoftranscript|><|lang|><|task|><|notimestamps|>")
        self.tokenizer, self.prefix, self.recipe = tokenizer, list(prefix), recipe
        self.previous, self.max_label_tokens = previous, max_label_tokens
        self.eot = tokenizer.convert_tokens_to_ids("<|endoftext|>")
        self.startofprev = tokenizer.convert_tokens_to_ids("<|startofprev|>")

    def plain(self, text_ids: list[int]) -> list[int]:
        return self.prefix + text_ids + [self.eot]

    def timestamped(self, text_ids: list[int], duration_s: float) -> list[int]:
        end = max(min(float(duration_s), MAX_TIMESTAMP_S), 0.02)
        return (self.prefix[:3] + [timestamp_token_id(self.tokenizer, 0.0)] + text_ids
                + [timestamp_token_id(self.tokenizer, end), self.eot])

    def build(self, i: int, epoch: int, text_ids: Callable[[int], list[int]],
              duration_s: float) -> tuple[list[int], int]:
        """(tokens, prompt_len): labels at positions < prompt_len are masked by the collator."""
        rng = np.random.default_rng([self.recipe.seed, epoch, i])
        with_ts = rng.random() < self.recipe.timestamp_probability
        with_prompt = rng.random() < self.recipe.prompt_probability
        ids = text_ids(i)
        core = self.timestamped(ids, duration_s) if with_ts and ids else self.plain(ids)
        if len(core) > self.max_label_tokens:
            core = self.plain(ids)
        if not with_prompt:
            return core, 0
        j = self.previous[i] if i < len(self.previous) else None
        n = len(self.previous)
        if j is None and n > 1:
            j = int(rng.integers(n - 1))
            j += j >= i  # any utterance but this one
        budget = min(MAX_PROMPT_TOKENS, self.max_label_tokens - len(core) - 1)
        prev = text_ids(j)[-budget:] if j is not None and budget > 0 else []
        if not prev:
            return core, 0
        return [self.startofprev] + prev + core, len(prev) + 1
