"""The soritune cache dir: `SORITUNE_CACHE`, else the platform's user cache dir. Everything soritune builds
once per machine lives under it (the bundled Whisper, the tokenizer, offline LLMs, Kokoro models and clips,
long-form recordings). A leaf module, so any package may import it."""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    from platformdirs import user_cache_dir

    return Path(os.environ.get("SORITUNE_CACHE", user_cache_dir("soritune")))
