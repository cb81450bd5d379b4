"""Peak memory of one measured phase, on CPU (resident set size) or CUDA (allocator and device).

    meter = MemoryMeter("cuda:0")
    meter.start()            # resets CUDA peak statistics, starts an RSS / device-memory sampler
    ... work ...
    reading = meter.stop()   # MemoryReading (MB = 10^6 bytes)

CPU: peak RSS sampled every `interval_s` by a background thread (ru_maxrss is a process-lifetime
high-water mark, useless once a larger phase ran earlier in the same process), plus that high-water
mark for reference. CUDA: torch.cuda.max_memory_allocated / max_memory_reserved after
reset_peak_memory_stats, and the device's used memory (total - free) sampled by the thread, which
also sees allocations outside PyTorch's allocator (CTranslate2). The CUDA calls go through a small
`CudaStats` object so tests can check the GPU path on a CPU-only machine.
"""

from __future__ import annotations

import os
import resource
import threading
from dataclasses import dataclass

from soritune.bench.timing import is_cuda

MB = 1_000_000  # every `*_mb` figure in soritune is 10^6 bytes (GPU tools' MiB are 2^20)


def rss_mb() -> float:
    """Current resident set size of this process, MB."""
    try:
        import psutil

        return psutil.Process().memory_info().rss / MB
    except ImportError:  # pragma: no cover - psutil comes with the dev extra; /proc is enough on Linux
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / MB


def max_rss_mb() -> float:
    """Process-lifetime peak RSS (ru_maxrss), MB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / MB  # KiB on Linux


class CudaStats:
    """The torch.cuda calls the meter needs (replaceable by a fake in tests)."""

    def __init__(self, device: str):
        self.device = device

    def reset_peak(self) -> None:
        import torch

        torch.cuda.synchronize(self.device)
        torch.cuda.reset_peak_memory_stats(self.device)

    def allocated(self) -> int:
        import torch

        return torch.cuda.memory_allocated(self.device)

    def reserved(self) -> int:
        import torch

        return torch.cuda.memory_reserved(self.device)

    def max_allocated(self) -> int:
        import torch

        torch.cuda.synchronize(self.device)
        return torch.cuda.max_memory_allocated(self.device)

    def max_reserved(self) -> int:
        import torch

        return torch.cuda.max_memory_reserved(self.device)

    def device_used(self) -> int:
        import torch

        free, total = torch.cuda.mem_get_info(self.device)
        return total - free


@dataclass
class MemoryReading:
    """Memory of one phase, MB (10^6 bytes). *_start: at start(); peak_*: highest seen until stop()."""

    device: str
    start_rss_mb: float
    peak_rss_mb: float
    max_rss_mb: float  # process lifetime (ru_maxrss)
    gpu_start_allocated_mb: float | None = None
    gpu_peak_allocated_mb: float | None = None
    gpu_peak_reserved_mb: float | None = None
    gpu_start_device_used_mb: float | None = None
    gpu_peak_device_used_mb: float | None = None

    @property
    def rss_delta_mb(self) -> float:
        return max(self.peak_rss_mb - self.start_rss_mb, 0.0)

    @property
    def gpu_allocated_delta_mb(self) -> float | None:
        if self.gpu_peak_allocated_mb is None or self.gpu_start_allocated_mb is None:
            return None
        return max(self.gpu_peak_allocated_mb - self.gpu_start_allocated_mb, 0.0)

    @property
    def gpu_device_used_delta_mb(self) -> float | None:
        if self.gpu_peak_device_used_mb is None or self.gpu_start_device_used_mb is None:
            return None
        return max(self.gpu_peak_device_used_mb - self.gpu_start_device_used_mb, 0.0)


class MemoryMeter:
    """Peak memory between start() and stop(); see the module docstring."""

    def __init__(self, device: str = "cpu", interval_s: float = 0.005, cuda: CudaStats | None = None):
        self.device, self.interval_s = str(device), interval_s
        self.cuda = cuda if cuda is not None else (CudaStats(self.device) if is_cuda(self.device) else None)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._peak_rss = 0.0
        self._peak_dev = 0
        self._start: dict = {}

    def _sample(self) -> None:
        self._peak_rss = max(self._peak_rss, rss_mb())
        if self.cuda is not None:
            self._peak_dev = max(self._peak_dev, self.cuda.device_used())

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._sample()

    def start(self) -> MemoryMeter:
        if self._thread is not None:
            raise RuntimeError("MemoryMeter.start() called twice without stop()")
        start = {"rss": rss_mb()}
        if self.cuda is not None:
            self.cuda.reset_peak()
            start.update(allocated=self.cuda.allocated(), device_used=self.cuda.device_used())
        self._start = start
        self._peak_rss, self._peak_dev = start["rss"], start.get("device_used", 0)
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="soritune-memory-meter", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> MemoryReading:
        if self._thread is None:
            raise RuntimeError("MemoryMeter.stop() called before start()")
        self._sample()
        self._stop.set()
        self._thread.join()
        self._thread = None
        reading = MemoryReading(device=self.device, start_rss_mb=self._start["rss"], peak_rss_mb=self._peak_rss,
                                max_rss_mb=max_rss_mb())
        if self.cuda is not None:
            reading.gpu_start_allocated_mb = self._start["allocated"] / MB
            reading.gpu_peak_allocated_mb = self.cuda.max_allocated() / MB
            reading.gpu_peak_reserved_mb = self.cuda.max_reserved() / MB
            reading.gpu_start_device_used_mb = self._start["device_used"] / MB
            reading.gpu_peak_device_used_mb = self._peak_dev / MB
        return reading

    def __enter__(self) -> MemoryMeter:
        return self.start()

    def __exit__(self, *exc) -> None:
        if self._thread is not None:
            self.reading = self.stop()
