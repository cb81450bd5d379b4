"""Bootstrap intervals: deterministic for a seed, sensible for paired comparisons."""

import numpy as np
import pytest

from soritune.eval.bootstrap import bootstrap_ci, bootstrap_rates, paired_bootstrap

RNG = np.random.default_rng(123)
N_REF = RNG.integers(5, 40, size=60)
ERR = RNG.binomial(N_REF, 0.15)


def test_deterministic_for_a_seed():
    a = bootstrap_ci(ERR, N_REF, n_boot=300, seed=7)
    b = bootstrap_ci(ERR, N_REF, n_boot=300, seed=7)
    c = bootstrap_ci(ERR, N_REF, n_boot=300, seed=8)
    assert a == b
    assert a != c


def test_interval_brackets_the_micro_average():
    point = ERR.sum() / N_REF.sum()
    lo, hi = bootstrap_ci(ERR, N_REF, n_boot=500, seed=0)
    assert lo < point < hi
    assert hi - lo < 0.2


def test_resamples_are_micro_averages():
    rates = bootstrap_rates([1, 0], [1, 3], n_boot=200, seed=0)
    # every resample of 2 utterances: {both first}=1, {both second}=0, {one each}=1/4
    assert set(np.round(rates, 6)) <= {1.0, 0.0, 0.25}


def test_paired_identical_systems():
    p = paired_bootstrap(ERR, ERR, N_REF, n_boot=200, seed=0)
    assert p.diff == 0.0 and p.ci95 == [0.0, 0.0] and p.p_b_better == 0.5


def test_paired_better_system():
    better = np.maximum(ERR - 2, 0)
    p = paired_bootstrap(ERR, better, N_REF, n_boot=300, seed=0)
    assert p.diff < 0 and p.ci95[1] < 0 and p.p_b_better > 0.99
    again = paired_bootstrap(ERR, better, N_REF, n_boot=300, seed=0)
    assert again == p


def test_length_mismatch_is_an_error():
    with pytest.raises(ValueError):
        paired_bootstrap([1, 2], [1], [3, 3])
