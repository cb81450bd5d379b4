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
