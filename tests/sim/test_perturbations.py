import pytest

from tactkit.sim.perturbations import parse_modes


def test_perturbation_modes_parse_all_lists_and_name_the_unknown():
    assert parse_modes("all") == ("none", "before_contact", "after_contact")
    with pytest.raises(ValueError, match="--perturb"):
        parse_modes("sideways")
    assert parse_modes("none, after_contact") == ("none", "after_contact")
    with pytest.raises(ValueError, match="--perturb"):
        parse_modes("none,sideways")


import numpy as np  # noqa: E402

from tactkit.sim.perturbations import (  # noqa: E402
    FAMILY,
    Motion,
    MotionRange,
    motion_factory,
    sample_motion,
)

WIPE = MotionRange(-0.008, 0.008, 0.04)


def test_the_family_is_seeded_bounded_smooth_and_covers_every_kind():
    kinds = set()
    for seed in range(120):
        m = sample_motion(np.random.default_rng([seed, 1]), WIPE, dim=2)
        again = sample_motion(np.random.default_rng([seed, 1]), WIPE, dim=2)
        np.testing.assert_array_equal(m.values, again.values)
        assert m.values.shape[1] == 2 and np.all(m.values[0] == 0.0) and np.all(m(-1.0) == 0.0)
        assert WIPE.low - 1e-12 <= m.values.min() and m.values.max() <= WIPE.high + 1e-12
        assert m.max_rate() <= WIPE.max_rate * (1 + 1e-9)
        assert np.abs(m.values).max() > 1e-3, m.kind  # every motion really moves
        kinds.add(m.kind)
    assert kinds == set(FAMILY)
    a, b = (sample_motion(np.random.default_rng(s), WIPE) for s in (1, 2))
    assert not np.array_equal(a.values, b.values)


def test_one_sided_ranges_stay_on_their_side_and_the_profile_interpolates():
    mass = MotionRange(0.0, 0.9, 4.0)
    for seed in range(30):
        m = sample_motion(np.random.default_rng(seed), mass)
        assert m.values.min() >= 0.0 and m.values.max() <= 0.9 + 1e-12
    m = Motion(np.array([[0.0], [1.0], [3.0]]), "test")
    assert m(0.0025)[0] == 0.5 and m(0.0075)[0] == 2.0 and m(100.0)[0] == 3.0  # 200 Hz grid, held after


def chirp_motion(rng, motion_range, dim):
    """A motion no training code generates: a chirp (used by the tests as a user's own motion)."""
    amp = 0.5 * motion_range.high
    return lambda tau: amp * np.sin(2 * np.pi * (0.2 + 0.1 * tau) * tau) * np.ones(dim)


def test_motion_factory_takes_kinds_and_user_functions():
    sine = motion_factory("family:sine")(np.random.default_rng(0), WIPE, 1)
    assert sine.kind == "sine"
    user = motion_factory("test_perturbations:chirp_motion")(np.random.default_rng(0), WIPE, 1)
    assert abs(user(1.0)[0] - 0.004 * np.sin(2 * np.pi * 0.3)) < 1e-9
    for bad, match in (("family:zigzag", "unknown kind"), ("nomodule", "module:function"),
                       ("tactkit.sim.perturbations:nothing", "cannot import")):
        with pytest.raises(ValueError, match=match):
            motion_factory(bad)
    with pytest.raises(ValueError, match="low < high"):
        MotionRange(0.01, 0.0, 1.0)


def test_a_task_follows_a_user_motion():
    from tactkit.sim.tasks import make_task

    env = make_task("wipe", perturb="after_contact", cameras=False, motion="test_perturbations:chirp_motion")
    env.reset(0)
    env.contact_time = 0.0
    assert abs(env.height_offset(env.delay + 1.0) - 0.004 * np.sin(2 * np.pi * 0.3)) < 1e-6
    env.close()


def test_heldout_motions_keep_the_training_familys_size_and_speed():
    from tactkit.experiments.heldout_motions import HELDOUT

    kinds = set()
    for name in HELDOUT:
        for seed in range(5):
            m = motion_factory(f"tactkit.experiments.heldout_motions:{name}")(np.random.default_rng(seed), WIPE, 1)
            assert WIPE.low - 1e-12 <= m.values.min() and m.values.max() <= WIPE.high + 1e-12
            assert m.max_rate() <= WIPE.max_rate * (1 + 1e-9) and np.abs(m.values).max() > 2e-3
            kinds.add(m.kind)
    assert kinds == set(HELDOUT) and not kinds & set(FAMILY)  # none of them is a family kind
