"""Timing helpers: a device-aware clock (CUDA work is synchronised before every reading), summary
statistics over repeats, a streamer that timestamps every decoding step of `generate`, and the
TTFT / TPOT arithmetic every backend shares.

Definitions used by every benchmark row:
- TTFT (time to first token): audio in -> first new token out = features + encoder + the first
  decoder step (prompt prefill and the first token).
- TPOT (time per output token): mean time of every later decoder step (the step that emits the
  end-of-text token counts: it costs a decoder step like any other).
- A batch of B clips takes n decoder steps (its longest output + the EOS step), so its latency
  should be close to TTFT + (n - 1) * TPOT.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import Callable, Iterable


def is_cuda(device: str) -> bool:
    return str(device).startswith("cuda")


def synchronize(device: str) -> None:
    """Wait for queued GPU work on `device` (a no-op on CPU)."""
    if is_cuda(device):
        import torch

        torch.cuda.synchronize(device)


def clock(device: str = "cpu") -> float:
    """perf_counter() in seconds after synchronising `device`: a reading that includes queued GPU work."""
    synchronize(device)
    return time.perf_counter()


def summarize(values: Iterable[float | None]) -> dict:
    """{median, min, max, n} of the values that are not None; all None when there are none."""
    vals = [float(v) for v in values if v is not None]
    if not vals:
        return {"median": None, "min": None, "max": None, "n": 0}
    return {"median": statistics.median(vals), "min": min(vals), "max": max(vals), "n": len(vals)}


class StepStreamer:
    """A transformers streamer that records the time of every `put` (one per decoding step).

    generate() calls put() once with the decoder prompt, then once per generated token (batch-wide),
    then end(). `put` copies to the host, so CUDA work up to that step has finished when it runs;
    `clock` synchronises anyway.
    """

    def __init__(self, device: str = "cpu", clock_fn: Callable[[str], float] = clock):
        self.device, self._clock = device, clock_fn
        self.times: list[float] = []
        self.ended = False

    def put(self, value) -> None:  # noqa: ARG002 - only the time matters
        self.times.append(self._clock(self.device))

    def end(self) -> None:
        self.ended = True

    def step_times(self) -> list[float]:
        """Times at which each new token was ready (the prompt's put is dropped)."""
        return self.times[1:]


@dataclass
class StepTiming:
    """One batch decoded with per-step timing."""

    ttft_s: float
    tpot_s: float | None  # None when only one step ran
    n_steps: int
    latency_s: float  # wall time of this instrumented run, audio in -> tokens out


def from_step_times(t0: float, step_times: list[float], t_end: float) -> StepTiming:
    """TTFT/TPOT from the start time and the time each decoder step finished."""
    if not step_times:
        raise ValueError("no decoder step was timed")
    ttft = step_times[0] - t0
    n = len(step_times)
    tpot = (step_times[-1] - step_times[0]) / (n - 1) if n > 1 else None
    return StepTiming(ttft_s=ttft, tpot_s=tpot, n_steps=n, latency_s=t_end - t0)


def from_phases(t0: float, t_first: float, first_gen_s: float, full_gen_s: float, n_steps: int,
                t_end: float | None = None) -> StepTiming:
    """TTFT/TPOT for engines without a per-step hook (CTranslate2): time features + encoder + a
    generate() limited to one new token (ends at t_first), and the full generate() from the same
    encoder output. Both generate() calls pay the prompt prefill, so their difference is n - 1 steps.

    first_gen_s: duration of the one-token generate; full_gen_s: duration of the full generate.
    """
    ttft = t_first - t0
    tpot = max(full_gen_s - first_gen_s, 0.0) / (n_steps - 1) if n_steps > 1 else None
    latency = (ttft - first_gen_s + full_gen_s) if t_end is None else t_end - t0
    return StepTiming(ttft_s=ttft, tpot_s=tpot, n_steps=n_steps, latency_s=latency)


def predicted_latency_s(ttft_s: float | None, tpot_s: float | None, n_steps: float | None) -> float | None:
    """TTFT + (n - 1) * TPOT: what per-step timings say a batch should take."""
    if ttft_s is None or n_steps is None:
        return None
    return ttft_s + max(n_steps - 1, 0) * (tpot_s or 0.0)


def relative_error(predicted: float | None, measured: float | None) -> float | None:
    if predicted is None or not measured:
        return None
    return abs(predicted - measured) / measured
