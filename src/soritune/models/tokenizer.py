"""Whisper tokenizer, feature extractor, processor and generation config, built offline.

The multilingual Whisper tokenizer ships inside soritune (assets/, gzip of the tokenizer.json
that comes with the bundled whisper-base), so `tiny:` and `random:` models need no download.
"""

from __future__ import annotations

import gzip
import os
import tempfile
from functools import lru_cache
from pathlib import Path

ASSET = Path(__file__).resolve().parent.parent / "assets" / "whisper_multilingual_tokenizer.json.gz"
TASKS = ("transcribe", "translate")
SPECIAL = ("<|endoftext|>", "<|startoftranscript|>", "<|translate|>", "<|transcribe|>",
           "<|startoflm|>", "<|startofprev|>", "<|nocaptions|>", "<|notimestamps|>")


@lru_cache(maxsize=1)
def _asset_tokenizer_file() -> str:
    from soritune.cache import cache_root

    path = cache_root() / "tokenizer" / "whisper-multilingual-tokenizer.json"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent)
        with os.fdopen(fd, "wb") as f:
            f.write(gzip.decompress(ASSET.read_bytes()))
        os.replace(tmp, path)
    return str(path)


def load_tokenizer(tokenizer_file: str | Path | None = None):
    """A transformers Whisper tokenizer from a tokenizer.json (default: the shipped multilingual one)."""
    from transformers import WhisperTokenizerFast

    return WhisperTokenizerFast(tokenizer_file=str(tokenizer_file or _asset_tokenizer_file()))


def build_processor(num_mel_bins: int = 80, tokenizer_file: str | Path | None = None):
    """WhisperProcessor: 16 kHz log-mel feature extractor (n mels) + the multilingual tokenizer."""
    from transformers import WhisperFeatureExtractor, WhisperProcessor

    fe = WhisperFeatureExtractor(feature_size=num_mel_bins)
    return WhisperProcessor(feature_extractor=fe, tokenizer=load_tokenizer(tokenizer_file))


def language_token_ids(tokenizer) -> dict[str, int]:
    """{'<|ko|>': id, ...} for every language token the tokenizer knows."""
    from transformers.models.whisper.tokenization_whisper import LANGUAGES

    out = {}
    for code in LANGUAGES:
        tok = f"<|{code}|>"
        tid = tokenizer.convert_tokens_to_ids(tok)
        if tid is not None and tid != tokenizer.unk_token_id:
            out[tok] = tid
    return out


def build_generation_config(tokenizer, model_config, ct2_config: dict | None = None):
    """A multilingual Whisper GenerationConfig (language/task forcing works with generate())."""
    from transformers import GenerationConfig

    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in SPECIAL}
    lang = language_token_ids(tokenizer)
    if ct2_config and ct2_config.get("lang_ids"):
        keep = set(ct2_config["lang_ids"])
        lang = {k: v for k, v in lang.items() if v in keep}
    gc = GenerationConfig(
        decoder_start_token_id=ids["<|startoftranscript|>"],
        bos_token_id=ids["<|endoftext|>"],
        eos_token_id=ids["<|endoftext|>"],
        pad_token_id=ids["<|endoftext|>"],
        max_length=model_config.max_target_positions,
        no_timestamps_token_id=ids["<|notimestamps|>"],
        prev_sot_token_id=ids["<|startofprev|>"],
        is_multilingual=True,
        lang_to_id=lang,
        task_to_id={"transcribe": ids["<|transcribe|>"], "translate": ids["<|translate|>"]},
        suppress_tokens=list((ct2_config or {}).get("suppress_ids", [])),
        begin_suppress_tokens=list((ct2_config or {}).get("suppress_ids_begin", [220, ids["<|endoftext|>"]])),
    )
    heads = (ct2_config or {}).get("alignment_heads")
    if heads:
        gc.alignment_heads = [list(h) for h in heads]
    return gc


# ---- timestamp tokens (not in tokenizer.json's added tokens: ids follow <|notimestamps|>) ----------
TIME_PRECISION_S = 0.02  # one timestamp token per 20 ms, <|0.00|> .. <|30.00|>
MAX_TIMESTAMP_S = 30.0


def timestamp_begin_id(tokenizer) -> int:
    """Id of <|0.00|>: the token right after <|notimestamps|> (as in Whisper and transformers)."""
    return tokenizer.convert_tokens_to_ids("<|notimestamps|>") + 1


def timestamp_token_id(tokenizer, seconds: float) -> int:
    """Id of the timestamp token nearest `seconds`, clamped to [0, 30] s."""
    seconds = min(max(float(seconds), 0.0), MAX_TIMESTAMP_S)
    return timestamp_begin_id(tokenizer) + round(seconds / TIME_PRECISION_S)


def timestamp_seconds(tokenizer, token_id: int) -> float | None:
    """Seconds of a timestamp token id; None for any other token."""
    index = int(token_id) - timestamp_begin_id(tokenizer)
    if 0 <= index <= round(MAX_TIMESTAMP_S / TIME_PRECISION_S):
        return round(index * TIME_PRECISION_S, 2)
    return None
