"""soritune: adapt, compress, evaluate and serve Whisper-class ASR for Korean and domain speech."""

__version__ = "0.1.0"
