"""Evaluation: Korean-first metrics, scoring normalisation, score / eval / compare stages.

    from soritune.eval import score_texts, run_score, run_eval, run_compare, ScoreConfig, EvalConfig

Names are imported lazily so `import soritune.eval` stays cheap.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "score_texts": "soritune.eval.score",
    "ScoreReport": "soritune.eval.score",
    "UtteranceScore": "soritune.eval.score",
    "ScoreConfig": "soritune.eval.scoring",
    "run_score": "soritune.eval.scoring",
    "EvalConfig": "soritune.eval.evaluate",
    "run_eval": "soritune.eval.evaluate",
    "run_compare": "soritune.eval.compare",
    "write_compare": "soritune.eval.compare",
    "CompareResult": "soritune.eval.compare",
    "normalize_text": "soritune.eval.normalize",
    "NORMALIZATION": "soritune.eval.normalize",
    "cer": "soritune.eval.metrics",
    "cer_spaced": "soritune.eval.metrics",
    "wer": "soritune.eval.metrics",
    "swer": "soritune.eval.metrics",
    "cer_reading": "soritune.eval.metrics",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'soritune.eval' has no attribute {name!r}")
