"""`DecodeOptions`: how every verb that decodes (transcribe, eval, serve, bench) turns audio into text.

One pydantic model, each bound declared once, used by both backends (torch and ct2). The defaults
are the plain, fast behaviour soritune always had (greedy, language forced, no VAD, one segment per
<= 30 s chunk); `DecodeOptions.long_form()` is the setting recommended for long recordings (Silero
VAD, beam 5, temperature fallback, timestamps, previous-text conditioning), the one
`benchmarks/longform.py` measures.

The fallback rule is Whisper's (and faster-whisper's): decode at the first temperature; a chunk
whose output is too repetitive (gzip compression ratio above `compression_ratio_threshold`) or too
unlikely (average log-probability below `log_prob_threshold`) is decoded again at the next
temperature, unless the model says it holds no speech (`no_speech_prob` above `no_speech_threshold`
and the log-probability also below its threshold), in which case it is emitted as silence.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from soritune.config import StageConfig

MAX_NEW_TOKENS = 224  # Whisper's sample_len (448 // 2); CTranslate2's cap too. The one bound of the token limit.
FALLBACK_TEMPERATURES = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)


class DecodeOptions(StageConfig):
    """Decoding settings shared by transcribe, eval, serve and bench (each one a CLI flag / config field)."""

    language: str | None = Field("ko", description="Whisper language code; None: detected per file from its first speech")
    task: Literal["transcribe", "translate"] = Field("transcribe", description="transcribe, or translate to English")
    batch_size: int = Field(8, ge=1, le=256, description="chunks decoded together (across files)")
    max_new_tokens: int = Field(MAX_NEW_TOKENS, ge=1, le=MAX_NEW_TOKENS, description="token limit per <= 30 s chunk")
    # long audio
    vad: bool = Field(False, description="Silero VAD: decode only speech, cut chunks at pauses")
    vad_threshold: float = Field(0.5, gt=0, lt=1, description="Silero speech probability threshold")
    vad_min_silence_ms: int = Field(500, ge=0, description="a pause at least this long ends a speech region")
    vad_speech_pad_ms: int = Field(200, ge=0, description="audio kept each side of a speech region")
    vad_min_speech_ms: int = Field(250, ge=0, description="speech regions shorter than this are dropped")
    chunk_s: float = Field(30.0, gt=1, le=30, description="longest chunk handed to the model, in seconds")
    # search
    beam_size: int = Field(1, ge=1, le=16, description="beam width (1: greedy)")
    patience: float = Field(1.0, gt=0, description="beam search patience (faster-whisper's; 1.0: standard)")
    length_penalty: float = Field(1.0, description="beam score length penalty exponent")
    temperatures: list[float] = Field([0.0], min_length=1, description="temperature fallback ladder, first one tried first")
    best_of: int = Field(5, ge=1, le=16, description="samples drawn at a fallback temperature (> 0), the likeliest kept "
                                                       "(Whisper's and faster-whisper's 5)")
    compression_ratio_threshold: float | None = Field(2.4, gt=0, description="fall back above this gzip ratio (None: never)")
    log_prob_threshold: float | None = Field(-1.0, description="fall back below this average log-prob (None: never)")
    no_speech_threshold: float | None = Field(0.6, gt=0, lt=1, description="above this no-speech probability (and a low log-prob) a chunk is silence")
    repetition_penalty: float = Field(1.0, gt=0, description="penalty on tokens already generated (1.0: none)")
    no_repeat_ngram_size: int = Field(0, ge=0, description="forbid repeating n-grams of this size (0: off)")
    suppress_blank: bool = Field(True, description="suppress a blank as the first token")
    # context
    initial_prompt: str | None = Field(None, description="text the model sees as preceding context (terms, spelling, style)")
    hotwords: str | None = Field(None, description="words to favour, given to the model as previous-text context")
    condition_on_previous_text: bool = Field(False, description="give each chunk the previous chunk's text as prompt")
    # output
    timestamps: bool = Field(False, description="segment timestamps from Whisper's timestamp tokens (several segments per chunk)")
    word_timestamps: bool = Field(False, description="word start/end times (ct2: CTranslate2 align; torch: cross-attention DTW)")

    @field_validator("temperatures")
    @classmethod
    def _temperatures(cls, value: list[float]) -> list[float]:
        if any(t < 0 or t > 2 for t in value):
            raise ValueError(f"temperatures must each be in [0, 2], got {value}")
        return [float(t) for t in value]

    @field_validator("language")
    @classmethod
    def _language(cls, value: str | None) -> str | None:
        if value is None or value.strip().lower() in ("", "auto", "none", "detect"):
            return None
        return value.strip().lower()

    @property
    def greedy(self) -> bool:
        return self.beam_size == 1 and len(self.temperatures) == 1 and self.temperatures[0] == 0.0

    @property
    def fallback(self) -> bool:
        return len(self.temperatures) > 1

    @classmethod
    def long_form(cls, **overrides) -> DecodeOptions:
        """The recommended setting for long recordings: VAD with 400 ms padding, beam 5, fallback,
        timestamps, previous-text conditioning.

        Measured on benchmarks/longform.py (Kokoro lecture, whisper-base; README): 200 ms of padding cut
        the soft onsets of sentences that begin with a vowel (a sentence's first word lost), 400 ms
        (faster-whisper's default) keeps them; the previous chunk's text as prompt keeps the writing
        style (digits, Latin terms) consistent from chunk to chunk. Both cost nothing in the gaps: the
        non-speech is cut out by the VAD before the prompt could make the model write there."""
        base = dict(vad=True, vad_speech_pad_ms=400, beam_size=5, temperatures=list(FALLBACK_TEMPERATURES),
                    timestamps=True, condition_on_previous_text=True, repetition_penalty=1.0, no_repeat_ngram_size=0)
        return cls(**{**base, **overrides})

    def describe(self) -> dict:
        """The settings as a report records them (strategy named, every field)."""
        strategy = "greedy" if self.beam_size == 1 else f"beam {self.beam_size}"
        return {"strategy": strategy, "temperature_fallback": self.fallback, **self.model_dump()}


def parse_temperatures(text: str) -> list[float]:
    """'0,0.2,0.4' or '0' -> [0.0, 0.2, 0.4] (the CLI form of `temperatures`)."""
    try:
        return [float(t) for t in str(text).replace(" ", "").split(",") if t != ""]
    except ValueError:
        from soritune.errors import ConfigError

        raise ConfigError(f"--temperatures expects numbers separated by commas, got {text!r}") from None
