"""RUN_DIR/metrics.jsonl (one row per logged step or evaluation) and optional TensorBoard logs."""

from __future__ import annotations

import json
from pathlib import Path

from soritune.errors import ConfigError
from soritune.jsonio import atomic_write_text, to_jsonable


class MetricsLog:
    """Append-only JSONL on the main process; on resume, rows after the checkpoint's step are dropped."""

    def __init__(self, path: Path, *, enabled: bool = True, resume_step: int | None = None,
                 tensorboard_dir: Path | None = None):
        self.path, self.enabled = Path(path), enabled
        self.writer = None
        if not enabled:
            return
        kept = []
        if resume_step is not None and self.path.exists():
            for line in self.path.read_text(encoding="utf-8").splitlines():
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:  # a line cut by kill -9
                    continue
                if row.get("step", 0) <= resume_step:
                    kept.append(line + "\n")
        atomic_write_text(self.path, "".join(kept))
        if tensorboard_dir is not None:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                raise ConfigError("tensorboard: needs the tensorboard package (pip install tensorboard)") from None
            self.writer = SummaryWriter(str(tensorboard_dir))

    def write(self, row: dict) -> None:
        if not self.enabled:
            return
        with self.path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(to_jsonable(row), ensure_ascii=False) + "\n")
        if self.writer is not None:
            step = int(row.get("step", 0))
            for key, value in row.items():
                if key != "step" and isinstance(value, (int, float)) and not isinstance(value, bool):
                    self.writer.add_scalar(f"train/{key}", value, step)
            self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def read_metrics(path: str | Path) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
