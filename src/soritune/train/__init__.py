"""train stage: `run(config) -> TrainResult` fine-tunes Whisper (LoRA / DoRA / QLoRA / full).

    from soritune.train import TrainConfig, run
    result = run(TrainConfig(model="bundled:whisper-base", train="train.jsonl", dev="dev.jsonl", out="runs/a"))

Submodules: config (TrainConfig), adapters (methods), efficiency (dynamic encoder length, frozen
encoder, chunked CE), loop (accelerate), checkpoint (exact resume), presets, run.
"""

from soritune.train.config import TrainConfig
from soritune.train.run import TrainResult, run  # noqa: E402  (run.py keeps heavy imports inside run())

__all__ = ["TrainConfig", "TrainResult", "run"]
