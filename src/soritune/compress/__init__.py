"""compress stage: prune (magnitude, lottery ticket + LoRA, structured), distill, export, sweep.

    from soritune.compress import LotteryConfig, run_lottery, DistillConfig, run_distill, ExportConfig, run_export

Every entry is `run(config) -> Result` (a dataclass saved as JSON in the output directory). Names
are imported lazily so `import soritune.compress` stays cheap.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "MagnitudeConfig": ("soritune.compress.prune_magnitude", "MagnitudeConfig"),
    "run_magnitude": ("soritune.compress.prune_magnitude", "run"),
    "LotteryConfig": ("soritune.compress.prune_lottery", "LotteryConfig"),
    "run_lottery": ("soritune.compress.prune_lottery", "run"),
    "StructuredConfig": ("soritune.compress.prune_structured", "StructuredConfig"),
    "run_structured": ("soritune.compress.prune_structured", "run"),
    "SweepConfig": ("soritune.compress.sweep", "SweepConfig"),
    "run_sweep": ("soritune.compress.sweep", "run"),
    "DistillConfig": ("soritune.compress.distill", "DistillConfig"),
    "run_distill": ("soritune.compress.distill", "run"),
    "ExportConfig": ("soritune.compress.export", "ExportConfig"),
    "run_export": ("soritune.compress.export", "run"),
    "prune": ("soritune.compress.registry", "prune"),
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        module, attr = _EXPORTS[name]
        return getattr(import_module(module), attr)
    raise AttributeError(f"module 'soritune.compress' has no attribute {name!r}")
