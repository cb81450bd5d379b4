"""What `bench train` measures in a training run, shared by both runners (soritune.train in
`train_worker`, the HF + PEFT recipe in `train_recipe`): the per-step clock, the device and
mixed precision as soritune.train resolves them, and the peak-memory fields of a row.
"""

from __future__ import annotations

from soritune.bench.timing import clock, summarize


class BudgetReached(Exception):
    """Raised from the progress callback once the timed window is over."""


class StepClock:
    """Times each optimizer step; raises BudgetReached after `warmup + steps` steps or `seconds` of
    timed steps (the window starts when the last warm-up step ends)."""

    def __init__(self, device: str, warmup: int, steps: int | None, seconds: float | None, raise_at_end: bool = True):
        self.device, self.warmup, self.steps, self.seconds = device, warmup, steps, seconds
        self.raise_at_end = raise_at_end
        self.t_start: float | None = None
        self.times: list[float] = []

    def mark_start(self) -> None:
        self.t_start = clock(self.device)

    def mark_step(self) -> bool:
        """Record a finished step; True when the window is complete."""
        self.times.append(clock(self.device))
        timed = len(self.times) - self.warmup
        if timed <= 0:
            return False
        if self.steps is not None:
            return timed >= self.steps
        return self.times[-1] - self.window_start >= (self.seconds or 0.0)

    def __call__(self, event: dict) -> None:  # soritune.train progress callback
        if event.get("event") == "start":
            self.mark_start()
        elif event.get("event") == "step" and self.mark_step() and self.raise_at_end:
            raise BudgetReached()

    @property
    def window_start(self) -> float:
        return self.times[self.warmup - 1] if self.warmup > 0 else (self.t_start if self.t_start is not None else self.times[0])

    def summary(self, batch_size: int) -> dict:
        timed = self.times[self.warmup:]
        if not timed:
            return {"steps_timed": 0, "samples_per_s": None, "step_s": summarize([])}
        edges = [self.window_start] + timed
        durations = [b - a for a, b in zip(edges, edges[1:])]
        wall = timed[-1] - self.window_start
        return {"steps_timed": len(timed), "samples_per_s": batch_size * len(timed) / wall if wall > 0 else None,
                "step_s": summarize(durations)}


def resolve_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def resolved_precision(mixed_precision: str, device: str) -> str:
    """no | bf16 | fp16, resolved the way soritune.train resolves "auto"."""
    import torch

    if mixed_precision != "auto":
        return mixed_precision
    if not device.startswith("cuda"):
        return "no"
    return "bf16" if torch.cuda.is_bf16_supported() else "fp16"


def memory_fields(reading, device: str) -> dict:
    if device.startswith("cuda"):
        return {"peak_mem_mb": reading.gpu_peak_allocated_mb, "memory_kind": "gpu allocated",
                "memory": {"gpu_peak_allocated_mb": reading.gpu_peak_allocated_mb,
                           "gpu_peak_reserved_mb": reading.gpu_peak_reserved_mb,
                           "gpu_peak_device_used_mb": reading.gpu_peak_device_used_mb,
                           "peak_rss_mb": reading.peak_rss_mb}}
    return {"peak_mem_mb": reading.peak_rss_mb, "memory_kind": "cpu rss",
            "memory": {"peak_rss_mb": reading.peak_rss_mb, "rss_before_load_mb": reading.start_rss_mb,
                       "rss_delta_mb": reading.rss_delta_mb}}
