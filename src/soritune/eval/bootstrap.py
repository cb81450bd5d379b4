"""Utterance-level bootstrap for micro-averaged error rates (numpy, fixed seed).

A resample draws n utterances with replacement and recomputes sum(errors) / sum(n_ref) over the
draw, so long utterances weigh as they do in the metric itself. Resamples are drawn as
multinomial counts per utterance, in blocks, so memory stays O(block * n).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

DEFAULT_N_BOOT = 1000
DEFAULT_SEED = 0


def _weights(n: int, n_boot: int, seed: int, block: int = 200):
    """Yield (k, n) arrays of how often each utterance appears in each of n_boot resamples."""
    rng = np.random.default_rng(seed)
    p = np.full(n, 1.0 / n)
    done = 0
    while done < n_boot:
        k = min(block, n_boot - done)
        yield rng.multinomial(n, p, size=k).astype(np.float64)
        done += k


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1), np.where(num > 0, np.inf, 0.0))


def bootstrap_rates(errors: Sequence[float], n_ref: Sequence[float], *, n_boot: int = DEFAULT_N_BOOT,
                    seed: int = DEFAULT_SEED) -> np.ndarray:
    """The micro-averaged rate of each of n_boot utterance-level resamples (length n_boot)."""
    e = np.asarray(errors, dtype=np.float64)
    d = np.asarray(n_ref, dtype=np.float64)
    if e.shape != d.shape or e.ndim != 1:
        raise ValueError("errors and n_ref must be 1-D sequences of the same length")
    if len(e) == 0:
        return np.zeros(0)
    out = [_ratio(w @ e, w @ d) for w in _weights(len(e), n_boot, seed)]
    return np.concatenate(out)


def percentile_ci(samples: np.ndarray, level: float = 0.95) -> list[float] | None:
    """[lo, hi] percentile interval of finite samples; None when there are none."""
    finite = samples[np.isfinite(samples)]
    if finite.size == 0:
        return None
    alpha = (1.0 - level) / 2.0
    lo, hi = np.quantile(finite, [alpha, 1.0 - alpha])
    return [float(lo), float(hi)]


def bootstrap_ci(errors: Sequence[float], n_ref: Sequence[float], *, n_boot: int = DEFAULT_N_BOOT,
                 seed: int = DEFAULT_SEED, level: float = 0.95) -> list[float] | None:
    """95% (by default) percentile interval of a micro-averaged rate; deterministic for a seed."""
    return percentile_ci(bootstrap_rates(errors, n_ref, n_boot=n_boot, seed=seed), level)


@dataclass
class PairedResult:
    """Rate B - rate A on the shared utterances (negative: B has fewer errors)."""

    rate_a: float
    rate_b: float
    diff: float
    ci95: list[float] | None
    p_b_better: float
    n_boot: int
    seed: int


def paired_bootstrap(errors_a: Sequence[float], errors_b: Sequence[float], n_ref: Sequence[float], *,
                     n_boot: int = DEFAULT_N_BOOT, seed: int = DEFAULT_SEED, level: float = 0.95) -> PairedResult:
    """Paired bootstrap: the same resampled utterances score both systems; p_b_better is the share
    of resamples where B's rate is strictly lower (ties count half)."""
    ea = np.asarray(errors_a, dtype=np.float64)
    eb = np.asarray(errors_b, dtype=np.float64)
    d = np.asarray(n_ref, dtype=np.float64)
    if not (ea.shape == eb.shape == d.shape) or ea.ndim != 1:
        raise ValueError("errors_a, errors_b and n_ref must be 1-D sequences of the same length")
    total = d.sum()
    if len(d) == 0 or total == 0:
        raise ValueError("paired bootstrap needs utterances with a non-empty reference")
    rate_a, rate_b = float(ea.sum() / total), float(eb.sum() / total)
    diffs = []
    for w in _weights(len(d), n_boot, seed):
        den = w @ d
        den = np.where(den > 0, den, np.nan)
        diffs.append((w @ eb) / den - (w @ ea) / den)
    delta = np.concatenate(diffs)
    finite = delta[np.isfinite(delta)]
    p_better = float(((finite < 0).sum() + 0.5 * (finite == 0).sum()) / max(finite.size, 1))
    return PairedResult(rate_a, rate_b, rate_b - rate_a, percentile_ci(delta, level), p_better, n_boot, seed)
