"""The decoding loop both backends share: batches, prompts, temperature fallback, timestamps, words.

A backend supplies the model steps (`encode`, `take`, `detect_language`, `generate`, `align`); this
module decides what to run, the same way on torch and CTranslate2:
- chunks of many files are decoded in one batch; with `condition_on_previous_text`, in waves (the
  k-th chunk of every file together), each chunk prompted with its predecessor's text (the rule:
  `next_context`; each Transcription carries it, so a caller that decodes a recording's chunks one call
  at a time, as the server does, passes it back through `contexts` and gets the same prompts);
- Whisper's temperature fallback (`DecodeOptions` doc): only the chunks that failed the thresholds
  are decoded again, at the next temperature, still batched;
- prompts (initial prompt, hotwords, previous text) are built by faster-whisper's `get_prompt`;
  word times come from faster-whisper's `add_word_timestamps` over the backend's `align` (CTranslate2's
  own on ct2, cross-attention DTW on torch), so both backends share one word-timing rule.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from typing import Protocol

import numpy as np

from soritune.audio import SAMPLE_RATE
from soritune.infer.base import Transcription, batches
from soritune.infer.options import DecodeOptions
from soritune.loops import loop_start

TIME_PRECISION_S = 0.02  # one Whisper timestamp token
PREPEND_PUNCTUATIONS = "\"'“¿([{-"
APPEND_PUNCTUATIONS = "\"'.。,，!！?？:：”)]}、"


class Engine(Protocol):
    """The model steps a backend provides to `decode_chunks`."""

    processor: object

    def encode(self, audios: list[np.ndarray]): ...
    def take(self, encoded, idx: list[int]): ...
    def detect_language(self, encoded) -> list[tuple[str, float]]: ...
    def generate(self, encoded, prompts: list[list[int]], temperature: float, options: DecodeOptions,
                 tokenizer) -> list[tuple[list[int], float, float]]: ...  # (tokens, avg_logprob, no_speech_prob)
    def align(self, encoded, start_sequence, text_tokens, num_frames, median_filter_width=7): ...


def compression_ratio(text: str) -> float:
    """Whisper's repetition signal: UTF-8 bytes / zlib-compressed bytes (> 2.4 suggests a loop)."""
    data = text.encode("utf-8")
    return round(len(data) / len(zlib.compress(data)), 3) if data else 0.0


def fw_tokenizer(processor, language: str | None, task: str):
    """faster-whisper's Tokenizer over the model's own tokenizer (prompts, timestamps, word splits)."""
    from faster_whisper.tokenizer import Tokenizer

    tok = processor.tokenizer

    def known(code: str) -> bool:
        return tok.convert_tokens_to_ids(f"<|{code}|>") not in (None, tok.unk_token_id)

    multilingual = known("ko")
    if language and multilingual and not known(language):
        from soritune.errors import SoritunError

        raise SoritunError(f"unknown language code {language!r} (use a Whisper code such as ko, en, ja)")
    return Tokenizer(tok.backend_tokenizer, multilingual, task=task, language=language or "en")


def word_timer(aligner):
    """faster-whisper's word-timing and prompt steps (`find_alignment`, `add_word_timestamps`,
    `get_prompt`) bound to any object with CTranslate2's `align(...)` signature (and `take`)."""
    from faster_whisper.transcribe import WhisperModel

    class WordTimer:
        frames_per_second = SAMPLE_RATE // 160
        tokens_per_second = SAMPLE_RATE // 320
        time_precision = TIME_PRECISION_S
        max_length = 448
        find_alignment = WhisperModel.find_alignment
        add_word_timestamps = WhisperModel.add_word_timestamps
        get_prompt = WhisperModel.get_prompt

        def __init__(self, model):
            self.model = model

    return WordTimer(aligner)


def split_timestamps(tokens: list[int], timestamp_begin: int, duration_s: float) -> list[tuple[float, float, list[int]]]:
    """Tokens with Whisper timestamp tokens -> (start_s, end_s, text tokens) per segment.

    A segment is the text between a start and an end timestamp; text after the last timestamp ends at
    `duration_s` (the chunk was cut before the model closed it); text with no timestamp at all is one
    segment over the whole chunk."""
    out, start, text = [], None, []
    for t in tokens:
        if t >= timestamp_begin:
            time_s = (t - timestamp_begin) * TIME_PRECISION_S
            if start is None:
                start = time_s
            elif text:
                out.append((start, max(time_s, start), text))
                start, text = None, []
            else:
                start = time_s
        else:
            text.append(t)
    if text:
        out.append((start if start is not None else 0.0, duration_s, text))
    return [(min(s, duration_s), min(max(e, s), duration_s), toks) for s, e, toks in out]


def _waves(keys: list, sequential: bool) -> list[list[int]]:
    """All chunks at once, or (sequential) the k-th chunk of every key together, in order."""
    if not sequential:
        return [list(range(len(keys)))]
    order: dict = {}
    for i, k in enumerate(keys):
        order.setdefault(k, []).append(i)
    depth = max((len(v) for v in order.values()), default=0)
    return [[v[w] for v in order.values() if w < len(v)] for w in range(depth)]


def next_context(before: list[int], tokens: list[int], temperature: float, silent: bool) -> list[int]:
    """With `condition_on_previous_text`: the prompt tokens the chunk after this one is given. Whisper's
    rule, as faster-whisper applies it: every token decoded since the last reset (`before`: this chunk's
    own prompt context, which starts with the initial prompt), this chunk's included with its timestamp
    tokens, the last 223; a reset (nothing) after a chunk decoded at a high temperature or judged
    silent, so a hallucination does not seed the next one."""
    return [] if (temperature > 0.5 or silent) else (list(before) + list(tokens))[-223:]


def decode_chunks(engine: Engine, audios: list[np.ndarray], options: DecodeOptions, keys: list | None = None,
                  progress: Callable[[int], None] | None = None,
                  contexts: list[list[int] | None] | None = None) -> list[Transcription]:
    """One Transcription per chunk (each <= 30 s). `keys` name the recording a chunk belongs to (chunks of
    one key in time order): the language is detected once per key, and previous text flows within a key.
    `contexts` (with `condition_on_previous_text`): per chunk, the `next_context` of the chunk before it
    when that was decoded in an earlier call (None: from this call's own flow, or the initial prompt)."""
    keys = list(keys) if keys is not None else list(range(len(audios)))
    out: list[Transcription | None] = [None] * len(audios)
    languages: dict = {}
    previous: dict = {}  # key -> prompt tokens from the previous chunk
    given = {i: list(c) for i, c in enumerate(contexts or []) if c is not None}
    trimmed = getattr(engine, "encoder_input", "padded") == "trimmed"
    for wave in _waves(keys, options.condition_on_previous_text):
        lengths = [len(audios[i]) for i in wave] if trimmed else None
        for local in batches(len(wave), options.batch_size, lengths):
            idx = [wave[j] for j in local]
            _decode_batch(engine, audios, idx, keys, options, languages, previous, out, given)
            if progress:
                progress(len(idx))
    return out  # type: ignore[return-value]


def _decode_batch(engine, audios, idx, keys, options: DecodeOptions, languages, previous, out, given) -> None:
    encoded = engine.encode([audios[i] for i in idx])
    if options.language is None:
        todo = [j for j, i in enumerate(idx) if keys[i] not in languages]
        if todo:
            for j, (lang, _p) in zip(todo, engine.detect_language(engine.take(encoded, todo))):
                languages.setdefault(keys[idx[j]], lang)
    lang_of = [options.language or languages[keys[i]] for i in idx]
    for lang in dict.fromkeys(lang_of):
        local = [j for j, g in enumerate(lang_of) if g == lang]
        sub = engine.take(encoded, local) if len(local) < len(idx) else encoded
        _decode_language_group(engine, audios, [idx[j] for j in local], sub, keys, lang, options, previous, out, given)


def _initial_tokens(tokenizer, options: DecodeOptions) -> list[int]:
    return tokenizer.encode(" " + options.initial_prompt.strip()) if options.initial_prompt else []


def _decode_language_group(engine, audios, idx, encoded, keys, language, options: DecodeOptions, previous, out, given):
    tokenizer = fw_tokenizer(engine.processor, language, options.task)
    timer = word_timer(engine)
    initial = _initial_tokens(tokenizer, options)
    prompts, contexts = [], []
    for i in idx:
        context = (given[i] if i in given else previous.get(keys[i], initial)) if options.condition_on_previous_text \
            else initial
        contexts.append(list(context))
        prompts.append(timer.get_prompt(tokenizer, list(context), without_timestamps=not options.timestamps,
                                        hotwords=options.hotwords))
    results = _generate_with_fallback(engine, encoded, prompts, tokenizer, options)
    chunks = []
    for j, i in enumerate(idx):
        tokens, avg_logprob, no_speech_prob, temperature = results[j]
        text_tokens = [t for t in tokens if t < tokenizer.eot]
        silent = (options.no_speech_threshold is not None and no_speech_prob > options.no_speech_threshold
                  and (options.log_prob_threshold is None or avg_logprob < options.log_prob_threshold))
        if silent:
            text_tokens = []
        duration_s = len(audios[i]) / SAMPLE_RATE
        if options.timestamps:
            parts = split_timestamps(text_tokens, tokenizer.timestamp_begin, duration_s)
        else:
            parts = [(0.0, duration_s, text_tokens)] if text_tokens else []
        content = [t for t in text_tokens if t < tokenizer.timestamp_begin]
        text = tokenizer.decode(content).strip()
        segments = [{"start": round(s, 3), "end": round(e, 3), "text": tokenizer.decode(toks).strip(),
                     "tokens": toks, "seek": 0} for s, e, toks in parts]
        chunks.append(segments)
        out[i] = Transcription(
            text=text, tokens=content, n_tokens=len(content), hit_max_tokens=len(tokens) >= options.max_new_tokens,
            avg_logprob=round(float(avg_logprob), 4), no_speech_prob=round(float(no_speech_prob), 4),
            compression_ratio=compression_ratio(text), temperature=temperature, language=language,
            segments=segments)
        if options.condition_on_previous_text:
            out[i].next_context = previous[keys[i]] = next_context(contexts[j], text_tokens, temperature, silent)
    if options.word_timestamps:
        _add_words(timer, tokenizer, encoded, idx, audios, chunks)
    for segments in chunks:
        for seg in segments:
            seg.pop("seek", None)


def _add_words(timer, tokenizer, encoded, idx, audios, chunks) -> None:
    """Word start/end for every segment of every chunk (faster-whisper's add_word_timestamps)."""
    have = [j for j, segs in enumerate(chunks) if segs]
    if not have:
        return
    sub = timer.model.take(encoded, have) if len(have) < len(idx) else encoded
    frames = [len(audios[idx[j]]) // 160 for j in have]
    timer.add_word_timestamps([chunks[j] for j in have], tokenizer, sub, frames, PREPEND_PUNCTUATIONS,
                              APPEND_PUNCTUATIONS, last_speech_timestamp=0.0)
    for j in have:
        for seg in chunks[j]:
            seg["words"] = [{"start": float(w["start"]), "end": float(w["end"]), "word": w["word"],
                             "probability": round(float(w["probability"]), 4)} for w in seg.get("words", [])]


def too_repetitive(text: str, content: list[int], options: DecodeOptions) -> bool:
    """Whisper's repetition test (gzip compression ratio of the text above the threshold), or a token loop
    anywhere in it (`soritune.loops`): a 30-s chunk of several sentences dilutes a loop in one of them below
    the ratio (",5,5,5,5..." over half a chunk measured 2.2-2.36 on benchmarks/longform.py, seed 1); off
    with the threshold."""
    if options.compression_ratio_threshold is None:
        return False
    return compression_ratio(text) > options.compression_ratio_threshold or loop_start(content) is not None


def without_loop(tokens: list[int], eot: int) -> list[int]:
    """The tokens up to the first loop's first unit (timestamp tokens kept; the loop judged on the text
    tokens): what is kept of an attempt that looped at every temperature. The speech the loop covered
    is left unwritten, so the long-form second pass can decode it on its own."""
    where = [k for k, t in enumerate(tokens) if t < eot]
    found = loop_start([tokens[k] for k in where])
    if found is None:
        return list(tokens)
    start, period = found
    return list(tokens[:where[start + period - 1] + 1])


def _needs_fallback(repetitive: bool, avg_logprob: float, no_speech_prob: float, options: DecodeOptions) -> bool:
    if options.no_speech_threshold is not None and no_speech_prob > options.no_speech_threshold and (
            options.log_prob_threshold is None or avg_logprob < options.log_prob_threshold):
        return False  # silence: no point decoding again
    too_unlikely = options.log_prob_threshold is not None and avg_logprob < options.log_prob_threshold
    return repetitive or too_unlikely


def _generate_with_fallback(engine, encoded, prompts, tokenizer, options: DecodeOptions):
    """(tokens, avg_logprob, no_speech_prob, temperature) per item; failing items retried at the next
    temperature; if every temperature fails, the least repetitive, then most likely, attempt is kept (cut
    before its loop, `without_loop`, when a fallback ladder was climbed), with the last temperature tried
    (as faster-whisper passes it on): the prompt is then reset after it (`next_context`), so a chunk that
    looped at every temperature does not seed the next one's loop."""
    n = len(prompts)
    final: list = [None] * n
    best: list = [None] * n
    pending = list(range(n))
    for temperature in options.temperatures:
        sub = engine.take(encoded, pending) if len(pending) < n else encoded
        results = engine.generate(sub, [prompts[i] for i in pending], temperature, options, tokenizer)
        still = []
        for i, (tokens, avg_logprob, no_speech_prob) in zip(pending, results):
            content = [t for t in tokens if t < tokenizer.eot]
            text = tokenizer.decode(content)
            attempt = (tokens, avg_logprob, no_speech_prob, temperature)
            repetitive = too_repetitive(text, content, options)  # once per attempt: ranks it and decides the fallback
            rank = (not repetitive, avg_logprob)
            if best[i] is None or rank > best[i][0]:
                best[i] = (rank, attempt)
            if _needs_fallback(repetitive, avg_logprob, no_speech_prob, options):
                still.append(i)
            else:
                final[i] = attempt
        pending = still
        if not pending:
            break
    for i in pending:
        tokens, avg_logprob, no_speech_prob, _kept = best[i][1]
        if options.fallback:  # a ladder was climbed and every rung looped; one temperature: kept whole, as faster-whisper
            tokens = without_loop(tokens, tokenizer.eot)
        final[i] = (tokens, avg_logprob, no_speech_prob, options.temperatures[-1])
    return final


class Decoder:
    """What every backend inherits: `transcribe` (the Backend interface) and `decode` over its Engine steps."""

    def decode(self, audios: list[np.ndarray], options: DecodeOptions, keys: list | None = None,
               progress: Callable[[int], None] | None = None,
               contexts: list[list[int] | None] | None = None) -> list[Transcription]:
        return decode_chunks(self, audios, options, keys=keys, progress=progress, contexts=contexts)

    def transcribe(self, audios, *, language="ko", task="transcribe", batch_size=8, max_new_tokens=None,
                   progress=None, options: DecodeOptions | None = None) -> list[Transcription]:
        """One transcription per clip (each <= 30 s). Without `options`: greedy, language and task forced."""
        if options is None:
            from soritune.infer.options import MAX_NEW_TOKENS

            options = DecodeOptions(language=language, task=task, batch_size=batch_size,  # capped at Whisper's 224
                                    max_new_tokens=min(max_new_tokens or MAX_NEW_TOKENS, MAX_NEW_TOKENS))
        return decode_chunks(self, list(audios), options, progress=progress)
