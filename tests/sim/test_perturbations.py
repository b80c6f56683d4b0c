import pytest

from tactkit.sim.perturbations import parse_modes


def test_perturbation_modes_parse_all_lists_and_name_the_unknown():
    assert parse_modes("all") == ("none", "before_contact", "after_contact")
    with pytest.raises(ValueError, match="--perturb"):
        parse_modes("sideways")
    assert parse_modes("none, after_contact") == ("none", "after_contact")
    with pytest.raises(ValueError, match="--perturb"):
        parse_modes("none,sideways")
