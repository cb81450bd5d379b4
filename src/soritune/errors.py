"""Errors a user can cause. The CLI prints these as one line, never as a traceback."""


class SoritunError(Exception):
    """Base class for user-facing errors (bad spec, bad file, bad config)."""


class AudioError(SoritunError):
    """An audio file could not be read. `reason` is a short machine-readable tag."""

    def __init__(self, path, reason: str, detail: str = ""):
        self.path = str(path)
        self.reason = reason
        self.detail = detail
        msg = f"{self.path}: {reason}"
        if detail:
            msg += f" ({detail})"
        super().__init__(msg)


class ModelSpecError(SoritunError):
    """A model spec could not be resolved."""


class ConfigError(SoritunError):
    """A config field is missing or invalid."""


# Stage errors. Each stage module re-exports its own (`from soritune.errors import CurateError`), so
# `soritune.data.curate.CurateError` and `soritune.errors.CurateError` are the same class.


class ManifestError(SoritunError):
    """A manifest line is not valid; the message names the file, line and field."""


class EncodingError(SoritunError):
    """Bytes that decode under none of the accepted encodings (`reason` = 'bad_encoding')."""

    reason = "bad_encoding"

    def __init__(self, where: str, detail: str = ""):
        self.where = where
        super().__init__(f"{where}: not UTF-8, EUC-KR or CP949" + (f" ({detail})" if detail else ""))


class CurateError(SoritunError):
    """Curation cannot run as configured (paths clash, unreadable replay manifest, ...)."""


class ExportError(SoritunError):
    """The dataset export (`soritune export-data`) cannot run as configured (output folder not empty, ...)."""


class CompressError(SoritunError):
    """A compress stage input or setting is not usable; the message names it."""


class ScoreInputError(SoritunError):
    """A reference or hypothesis file cannot be read; the message names the file and line."""


class CompareError(SoritunError):
    """Two reports cannot be compared (no shared ids, different normalisation or references)."""


class PrepareError(SoritunError):
    """A corpus could not be prepared (nothing found, bad root, accounting mismatch)."""


class IdMismatchError(SoritunError):
    """Reference and hypothesis ids differ; the message lists the first few on each side."""


class TrainOOMError(SoritunError):
    """CUDA ran out of memory; the message names a batch size that fits."""


class NothingScoredError(SoritunError):
    """No utterance could be scored; the report was written with null metrics and this reason."""


class CaptionInputError(SoritunError):
    """Candidates and references do not describe the same clips, or a clip has no reference."""
