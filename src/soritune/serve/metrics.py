"""Prometheus text exposition (format 0.0.4) for the server: counters, gauges, histograms.

A few dozen lines instead of a dependency: the server needs only labelled counters, gauges and
fixed-bucket histograms, rendered as text on `GET /metrics`. Thread-safe (one lock per metric).
"""

from __future__ import annotations

import bisect
import math
import threading
from dataclasses import dataclass

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

LATENCY_BUCKETS_S = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
BATCH_BUCKETS = (1, 2, 3, 4, 6, 8, 12, 16, 32)


def _escape(value: str) -> str:
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(pairs: tuple[tuple[str, str], ...], extra: tuple[tuple[str, str], ...] = ()) -> str:
    items = pairs + extra
    if not items:
        return ""
    return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in items) + "}"


def _num(x: float) -> str:
    if math.isinf(x):
        return "+Inf" if x > 0 else "-Inf"
    if float(x).is_integer():
        return str(int(x))
    return repr(float(x))


class _Metric:
    kind = "untyped"

    def __init__(self, name: str, help: str):  # noqa: A002 - Prometheus term
        self.name, self.help = name, help
        self._lock = threading.Lock()

    def header(self) -> list[str]:
        return [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} {self.kind}"]


class Counter(_Metric):
    kind = "counter"

    def __init__(self, name: str, help: str):  # noqa: A002
        super().__init__(name, help)
        self._values: dict[tuple[tuple[str, str], ...], float] = {}

    def inc(self, amount: float = 1.0, **labels: str) -> None:
        if amount < 0:
            raise ValueError("a counter only goes up")
        key = tuple(sorted((k, str(v)) for k, v in labels.items()))
        with self._lock:
            self._values[key] = self._values.get(key, 0.0) + amount

    def value(self, **labels: str) -> float:
        """The value for exactly these labels; with no labels, the sum over all label sets."""
        with self._lock:
            if not labels:
                return sum(self._values.values())
            return self._values.get(tuple(sorted((k, str(v)) for k, v in labels.items())), 0.0)

    def render(self) -> list[str]:
        with self._lock:
            items = sorted(self._values.items())
        lines = self.header()
        if not items:
            lines.append(f"{self.name} 0")
        lines += [f"{self.name}{_labels(k)} {_num(v)}" for k, v in items]
        return lines


class Gauge(_Metric):
    kind = "gauge"

    def __init__(self, name: str, help: str):  # noqa: A002
        super().__init__(name, help)
        self._value = 0.0

    def set(self, value: float) -> None:
        with self._lock:
            self._value = float(value)

    def add(self, amount: float) -> None:
        with self._lock:
            self._value += amount

    def value(self) -> float:
        return self._value

    def render(self) -> list[str]:
        return self.header() + [f"{self.name} {_num(self._value)}"]


class Histogram(_Metric):
    kind = "histogram"

    def __init__(self, name: str, help: str, buckets: tuple[float, ...]):  # noqa: A002
        super().__init__(name, help)
        self.buckets = tuple(sorted(buckets))
        self._counts = [0] * (len(self.buckets) + 1)  # last one is +Inf
        self._sum = 0.0
        self._n = 0
        self._max = 0.0

    def observe(self, value: float) -> None:
        with self._lock:
            self._counts[bisect.bisect_left(self.buckets, value)] += 1
            self._sum += value
            self._n += 1
            self._max = max(self._max, value)

    @property
    def count(self) -> int:
        return self._n

    @property
    def sum(self) -> float:
        return self._sum

    @property
    def max(self) -> float:
        return self._max

    def render(self) -> list[str]:
        with self._lock:
            counts, total, n = list(self._counts), self._sum, self._n
        lines, cumulative = self.header(), 0
        for bound, c in zip(self.buckets + (math.inf,), counts):
            cumulative += c
            lines.append(f'{self.name}_bucket{{le="{_num(bound)}"}} {cumulative}')
        lines += [f"{self.name}_sum {_num(total)}", f"{self.name}_count {n}"]
        return lines


@dataclass
class ServeMetrics:
    """Every metric the server exposes, by role."""

    requests: Counter
    errors: Counter
    latency: Histogram
    audio_s: Counter
    batch_size: Histogram
    queue_depth: Gauge
    in_flight: Gauge
    model_ready: Gauge

    @classmethod
    def create(cls) -> ServeMetrics:
        return cls(
            requests=Counter("soritune_requests_total", "HTTP requests answered, by route and status code."),
            errors=Counter("soritune_errors_total", "Requests answered with an error, by error code."),
            latency=Histogram("soritune_transcription_latency_seconds",
                              "Wall time of successful transcription requests, upload read to response.",
                              LATENCY_BUCKETS_S),
            audio_s=Counter("soritune_audio_seconds_total", "Seconds of audio transcribed."),
            batch_size=Histogram("soritune_batch_size", "Clips (<= 30 s chunks) per model call.", BATCH_BUCKETS),
            queue_depth=Gauge("soritune_queue_depth", "Clips waiting for the model."),
            in_flight=Gauge("soritune_requests_in_flight", "Transcription requests being answered."),
            model_ready=Gauge("soritune_model_ready", "1 once the model is loaded, else 0."),
        )

    def render(self) -> str:
        lines: list[str] = []
        for metric in (self.requests, self.errors, self.latency, self.audio_s, self.batch_size, self.queue_depth,
                       self.in_flight, self.model_ready):
            lines += metric.render()
        return "\n".join(lines) + "\n"


def parse_text(text: str) -> dict[str, float]:
    """Prometheus text -> {'name{labels}': value}; for tests and the load benchmark."""
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            out[key] = float(value)
    return out
