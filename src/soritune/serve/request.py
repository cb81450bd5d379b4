"""Read and validate a `/v1/audio/transcriptions` (or `/translations`) multipart request.

The body is streamed through a size limit (never held whole in memory; files spool to disk past
1 MB). Every field is checked against the OpenAI parameters this server honours; anything else is
a 400 that names the field, so a typo never changes the result silently.

Honoured: file, model (any value: the server has one model), language (absent: the server's
default; `auto`: detected), prompt (the model's initial prompt: terms, spelling, style), response_format,
temperature (0..1; above 0 the model samples at it, 0 or absent: the server's decoding options),
timestamp_granularities[] (segment, word: word times in verbose_json), stream (true: server-sent
events, see serve/stream.py), chunking_strategy (auto only: long audio is chunked at pauses, or at
Silero VAD speech regions when the server runs with VAD), and soritune's `diarize` (none, or
channels: a stereo call split by channel into agent / customer turns, merged by time).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from soritune.serve.errors import ApiError
from soritune.serve.formats import FORMATS

FORM_OVERHEAD_BYTES = 64 * 1024  # multipart headers and the small text fields around the file
MAX_FIELD_BYTES = 64 * 1024
UNSUPPORTED = {  # OpenAI parameters this server knows but cannot honour
    "include": "logprobs are not computed by the greedy backends",
    "keywords": "keyword biasing is not supported",
    "known_speaker_names": "only channel diarization is supported (diarize=channels)",
    "known_speaker_references": "only channel diarization is supported (diarize=channels)",
    "languages": "pass one Whisper language code in `language`",
}
SINGLE = ("model", "language", "prompt", "response_format", "temperature", "stream", "chunking_strategy", "diarize")
GRANULARITIES = ("segment", "word")
DIARIZE = ("none", "channels")


@dataclass
class TranscriptionForm:
    data: bytes
    filename: str
    model: str | None
    language: str | None  # as sent; resolved against the model's languages by the app
    prompt: str | None
    response_format: str
    temperature: float
    stream: bool = False
    granularities: tuple[str, ...] = ()  # timestamp_granularities[] as sent
    diarize: str = "none"

    @property
    def words(self) -> bool:
        return "word" in self.granularities


def too_large(limit_bytes: int) -> ApiError:
    return ApiError(413, f"upload too large: this server accepts files up to {limit_bytes / 1e6:g} MB "
                         f"(--max-upload-mb)", param="file", code="file_too_large")


async def read_form(request, max_upload_bytes: int):
    """The parsed multipart form, or ApiError 413 (over the limit) / 415 (not multipart) / 400 (malformed)."""
    from starlette.formparsers import MultiPartException, MultiPartParser

    class _TooLarge(MultiPartException):
        pass

    ctype = request.headers.get("content-type", "")
    if not ctype.lower().startswith("multipart/form-data"):
        raise ApiError(415, f"send the audio as multipart/form-data with a `file` field (got content-type "
                            f"{ctype or 'none'!r})", code="invalid_content_type")
    limit = max_upload_bytes + FORM_OVERHEAD_BYTES
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large(max_upload_bytes)

    async def limited():
        seen = 0
        async for chunk in request.stream():
            seen += len(chunk)
            if seen > limit:
                raise _TooLarge("too large")
            yield chunk

    parser = MultiPartParser(request.headers, limited(), max_files=4, max_fields=32, max_part_size=MAX_FIELD_BYTES)
    try:
        return await parser.parse()
    except _TooLarge:
        raise too_large(max_upload_bytes) from None
    except MultiPartException as e:
        raise ApiError(400, f"malformed multipart body: {e.message}", code="invalid_multipart") from None


def _base(key: str) -> str:
    return key[:-2] if key.endswith("[]") else key


async def parse_transcription_form(form, max_upload_bytes: int) -> TranscriptionForm:
    """Validate the fields of a parsed form (see the module doc for what each one does)."""
    from starlette.datastructures import UploadFile

    seen: dict[str, list] = {}
    for key, value in form.multi_items():
        seen.setdefault(key, []).append(value)
    for key in seen:
        base = _base(key)
        if base in UNSUPPORTED:
            raise ApiError(400, f"parameter {base!r} is not supported by this server: {UNSUPPORTED[base]}",
                           param=base, code="unsupported_parameter")
        if key not in SINGLE and key != "file" and base != "timestamp_granularities":
            raise ApiError(400, f"unrecognized request argument supplied: {key!r}", param=key,
                           code="unknown_parameter")
        if key in SINGLE + ("file",) and len(seen[key]) > 1:
            raise ApiError(400, f"{key!r} was sent {len(seen[key])} times; send it once", param=key,
                           code="duplicate_parameter")
        if key != "file" and any(isinstance(v, UploadFile) for v in seen[key]):
            raise ApiError(400, f"{key!r} must be a text field, not a file", param=key, code="invalid_value")

    upload = seen.get("file", [None])[0]
    if upload is None:
        raise ApiError(400, "missing the `file` field (the audio to transcribe)", param="file", code="missing_file")
    if not isinstance(upload, UploadFile):
        raise ApiError(400, "`file` must be an uploaded file (multipart part with a filename), not a text value",
                       param="file", code="invalid_file")
    data = await upload.read(max_upload_bytes + 1)
    await upload.close()
    if len(data) > max_upload_bytes:
        raise too_large(max_upload_bytes)

    def text(key: str) -> str | None:
        value = seen.get(key, [None])[0]
        return value.strip() if isinstance(value, str) and value.strip() else None

    fmt = text("response_format") or "json"
    if fmt not in FORMATS:
        raise ApiError(400, f"response_format must be one of {', '.join(FORMATS)}; got {fmt!r}",
                       param="response_format", code="invalid_response_format")
    temperature = 0.0
    if text("temperature") is not None:
        try:
            temperature = float(text("temperature"))
        except ValueError:
            temperature = math.nan
        if not 0.0 <= temperature <= 1.0:
            raise ApiError(400, f"temperature must be a number between 0 and 1; got {text('temperature')!r}",
                           param="temperature", code="invalid_value")
    stream = (text("stream") or "false").lower()
    if stream not in ("false", "0", "true", "1"):
        raise ApiError(400, f"stream must be true or false; got {text('stream')!r}", param="stream", code="invalid_value")
    diarize = text("diarize") or "none"
    if diarize not in DIARIZE:
        raise ApiError(400, f"diarize must be one of {', '.join(DIARIZE)}; got {diarize!r}", param="diarize",
                       code="invalid_value")
    if (text("chunking_strategy") or "auto") != "auto":
        raise ApiError(400, "chunking_strategy must be 'auto' (long audio is cut at pauses into <= 30 s chunks)",
                       param="chunking_strategy", code="unsupported_value")
    grans = [g for k in seen if _base(k) == "timestamp_granularities" for g in seen[k]]
    for g in grans:
        if g not in GRANULARITIES:
            raise ApiError(400, f"timestamp_granularities must each be one of {', '.join(GRANULARITIES)}; got {g!r}",
                           param="timestamp_granularities", code="invalid_value")
    if grans and fmt != "verbose_json" and stream not in ("true", "1"):
        raise ApiError(400, "timestamp_granularities needs response_format=verbose_json",
                       param="timestamp_granularities", code="invalid_value")
    return TranscriptionForm(data=data, filename=upload.filename or "upload", model=text("model"),
                             language=text("language"), prompt=text("prompt"), response_format=fmt,
                             temperature=temperature, stream=stream in ("true", "1"), granularities=tuple(grans),
                             diarize=diarize)


def resolve_language(value: str | None, languages: dict[str, str], default: str | None) -> str | None:
    """A Whisper language code from a code ('ko') or an English name ('korean'); None for 'auto' (detect);
    400 if the model lacks it."""
    if value is None:
        return default
    key = value.strip().lower()
    if key in ("auto", "detect"):
        return None
    if key in languages:
        return key
    by_name = {name.lower(): code for code, name in languages.items()}
    if key in by_name:
        return by_name[key]
    raise ApiError(400, f"language {value!r} is not one this model knows; use a Whisper language code "
                        f"such as ko, en, ja ({len(languages)} known; see GET /v1/models)",
                   param="language", code="invalid_language")
