"""The marker-field model on hand-made contacts."""

import numpy as np
import pytest

from tactkit.sim.tactile import MarkerField, MarkerGrid


def test_no_contact_no_motion():
    f = MarkerField(MarkerGrid())
    out = f.compute(np.zeros((0, 2)), np.zeros(0), np.zeros((0, 2)))
    assert out.shape == (63, 2) and out.dtype == np.float32 and np.all(out == 0)


def test_centred_press_is_radial_and_symmetric():
    g = MarkerGrid()
    out = MarkerField(g).compute([[0.0, 0.0]], [10.0], [[0.0, 0.0]]).reshape(7, 9, 2)
    np.testing.assert_allclose(out[:, :, 0], -out[:, ::-1, 0], atol=1e-7)
    np.testing.assert_allclose(out[:, :, 1], -out[::-1, :, 1], atol=1e-7)
    rest = g.rest_positions().reshape(7, 9, 2)
    radial = np.sum(out * rest, axis=2)
    assert np.all(radial >= -1e-9)  # every marker moves away from the contact
    assert 0.005 < np.abs(out).max() < 0.05  # typical tracker magnitudes at 10 N


def test_shear_follows_force_and_grows_with_it():
    f = MarkerField(MarkerGrid())
    weak = f.compute([[0.0, 0.0]], [5.0], [[-1.0, 0.0]]).mean(axis=0)
    strong = f.compute([[0.0, 0.0]], [5.0], [[-3.0, 0.0]]).mean(axis=0)
    assert weak[0] < 0 and strong[0] < weak[0]
    assert abs(strong[1]) < 1e-6


def test_saturates_and_validates():
    g = MarkerGrid(max_offset=0.05)
    out = MarkerField(g).compute([[0.0, 0.0]], [1e4], [[1e4, 0.0]])
    assert np.linalg.norm(out, axis=1).max() <= 0.05 + 1e-6
    with pytest.raises(ValueError, match="disagree"):
        MarkerField(g).compute([[0.0, 0.0]], [1.0, 2.0], [[0.0, 0.0]])
    with pytest.raises(ValueError, match="sigma"):
        MarkerGrid(sigma=0.0)
