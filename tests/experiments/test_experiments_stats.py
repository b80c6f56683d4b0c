"""Bootstrap intervals of means and paired differences."""

import numpy as np
import pytest

from tactkit.experiments.stats import bootstrap_mean, paired_difference


def test_interval_covers_the_mean_shrinks_with_n_and_is_deterministic():
    rng = np.random.default_rng(0)
    small, large = rng.normal(0.5, 0.2, 10), rng.normal(0.5, 0.2, 400)
    a, b = bootstrap_mean(small), bootstrap_mean(large)
    assert a.lo < a.mean < a.hi and b.lo < b.mean < b.hi
    assert (b.hi - b.lo) < 0.4 * (a.hi - a.lo)  # ~sqrt(40) narrower
    assert abs((b.hi - b.lo) - 2 * 1.96 * 0.2 / np.sqrt(400)) < 0.01  # the normal-theory width
    assert bootstrap_mean(small) == a  # seeded
    assert bootstrap_mean([0.7] * 5).fmt() == "0.70 [0.70, 0.70]"
    with pytest.raises(ValueError, match="at least one"):
        bootstrap_mean([])


def test_paired_difference_sees_what_unpaired_means_hide():
    rng = np.random.default_rng(1)
    base = rng.uniform(0.0, 1.0, 12)  # seeds differ a lot in difficulty...
    a, b = base + 0.05, base  # ...but a is better by 0.05 on every one of them
    d = paired_difference(a, b)
    assert d.excludes_zero and abs(d.mean - 0.05) < 1e-12
    ua, ub = bootstrap_mean(a), bootstrap_mean(b)
    assert ua.lo < ub.hi  # the unpaired intervals overlap
    noise = paired_difference(b + np.tile([0.1, -0.1], 6), b)  # no systematic difference
    assert not noise.excludes_zero and abs(noise.mean) < 1e-12
    with pytest.raises(ValueError, match="same shape"):
        paired_difference([1.0, 2.0], [1.0])
