"""Speech LLM: a Whisper encoder, a projector (SALMONN / Granite window Q-Former, SLAM or Ultravox frame
stacking) and a causal LLM with LoRA, trained in two stages, evaluated and benchmarked.

    from soritune.speechllm import SpeechLLM, SpeechLLMConfig

Names are imported lazily so `import soritune.speechllm` stays cheap.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "SpeechLLM": "soritune.speechllm.model",
    "AudioInfo": "soritune.speechllm.model",
    "SpeechLLMConfig": "soritune.speechllm.config",
    "StageTrainConfig": "soritune.speechllm.config",
    "load_llm": "soritune.speechllm.llm",
    "build_projector": "soritune.speechllm.projectors",
    "PROJECTORS": "soritune.speechllm.projectors",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'soritune.speechllm' has no attribute {name!r}")
