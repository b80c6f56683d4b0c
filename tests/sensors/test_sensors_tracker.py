import numpy as np
import pytest

from tactkit.sensors.synthetic import (
    MarkerImageSpec,
    SyntheticMarkerSequence,
    displacement_field,
    grid_positions,
    render,
)
from tactkit.sensors.tracker import MarkerTracker, TrackerConfig


def _score(seq, tracker):
    errs, tracked, visible = [], 0, 0
    for f in seq:
        r = tracker.update(f.image)
        if r is None:
            continue
        e = np.linalg.norm(r.positions - f.positions, axis=1)
        good = r.valid & f.visible & (e < 1.0)
        tracked += int(good.sum())
        visible += int(f.visible.sum())
        errs.append(e[good])
    e = np.concatenate(errs)
    return float(np.sqrt(np.mean(e**2))), tracked / visible


@pytest.mark.parametrize("kind", ["shear", "rotation", "indentation", "shear_rotation"])
def test_tracks_synthetic_fields_subpixel(kind):
    seq = SyntheticMarkerSequence(kind=kind, magnitude=15.0, n_frames=12, blur_sigma=1.0,
                                  noise_sigma=3.0, gradient=0.4, drop_fraction=0.03, seed=3)
    rms, frac = _score(seq, MarkerTracker(TrackerConfig(rest_frames=1)))
    assert rms < 0.2
    assert frac >= 0.98


def test_offsets_are_normalised_and_rest_is_first_frame():
    spec = MarkerImageSpec()
    seq = SyntheticMarkerSequence(spec, kind="shear", magnitude=10.0, n_frames=5, seed=0)
    tr = MarkerTracker(TrackerConfig(rest_frames=1))
    results = [tr.update(f.image) for f in seq]
    np.testing.assert_allclose(tr.rest, seq.rest, atol=0.1)
    r = results[2]  # peak of the sine ramp
    expected = seq.displacement(2) / np.array([spec.width, spec.height])
    assert r.offsets.dtype == np.float32 and r.offsets.shape == (63, 2)
    np.testing.assert_allclose(r.offsets, expected, atol=0.2 / spec.height)
    np.testing.assert_allclose(tr.rest_normalised, seq.rest / [spec.width, spec.height], atol=1e-3)


def test_rezero_makes_current_field_the_new_rest():
    seq = SyntheticMarkerSequence(kind="rotation", magnitude=12.0, n_frames=9, seed=1)
    tr = MarkerTracker(TrackerConfig(rest_frames=1))
    for t in range(5):
        r = tr.update(seq.frame(t).image)
    assert np.linalg.norm(r.offsets_px, axis=1).max() > 11.5
    tr.rezero()
    tr.update(seq.frame(4).image)  # rezero takes this frame's positions as rest
    r = tr.update(seq.frame(4).image)
    assert np.abs(r.offsets_px).max() < 0.2
    r = tr.update(seq.frame(8).image)  # back at the original rest: minus the old field
    np.testing.assert_allclose(r.offsets_px, -seq.displacement(4), atol=0.3)


def test_vanished_and_merged_markers_keep_identities():
    spec = MarkerImageSpec(rows=5, cols=5)
    rest = grid_positions(spec)
    tr = MarkerTracker(TrackerConfig(grid=(5, 5), rest_frames=1))
    tr.update(render(spec, rest, noise_sigma=2.0, rng=np.random.default_rng(0)))
    disp = displacement_field("shear", rest, 8.0)
    pos = rest + disp
    visible = np.ones(25, bool)
    visible[[6, 12, 13]] = False  # a cluster vanishes
    # markers 0 and 1 slide onto each other: one merged blob
    pos2 = pos.copy()
    pos2[0] = pos[1] - [6.0, 0.0]
    img = render(spec, pos2, visible, noise_sigma=2.0, rng=np.random.default_rng(1))
    r = tr.update(img)
    assert not r.valid[[6, 12, 13]].any()
    assert not r.valid[0] and not r.valid[1]  # merged blob is not trusted for either
    others = np.setdiff1d(np.arange(25), [0, 1, 6, 12, 13])
    assert r.valid[others].all()
    np.testing.assert_allclose(r.positions[others], pos[others], atol=0.2)
    # interpolated from neighbours under uniform shear: close to the truth
    np.testing.assert_allclose(r.positions[[6, 12, 13]], pos[[6, 12, 13]], atol=0.5)
    # next frame everything is back: all tracked, no identity swaps
    r = tr.update(render(spec, pos, noise_sigma=2.0, rng=np.random.default_rng(2)))
    assert r.valid.all()
    np.testing.assert_allclose(r.positions, pos, atol=0.2)


def test_tilted_camera_grid_is_ordered_row_major():
    spec = MarkerImageSpec(rows=5, cols=5)
    rest = grid_positions(spec)
    c = rest.mean(axis=0)
    a = np.deg2rad(12)
    rot = (rest - c) @ np.array([[np.cos(a), np.sin(a)], [-np.sin(a), np.cos(a)]]) * 0.8 + c
    tr = MarkerTracker(TrackerConfig(grid=(5, 5), rest_frames=1))
    tr.update(render(spec, rot))
    np.testing.assert_allclose(tr.rest, rot, atol=0.1)


def test_wrong_grid_is_a_clear_error():
    seq = SyntheticMarkerSequence(n_frames=2)  # 7x9 markers
    tr = MarkerTracker(TrackerConfig(grid=(5, 5), rest_frames=1))
    with pytest.raises(ValueError, match="found 63 markers.*5x5 expects 25"):
        tr.update(seq.frame(0).image)
    with pytest.raises(ValueError, match="grid"):
        TrackerConfig(grid=(7,))
    with pytest.raises(ValueError, match="grid"):
        TrackerConfig(grid=(1, 9))


def test_bright_markers():
    spec = MarkerImageSpec(rows=5, cols=5)
    seq = SyntheticMarkerSequence(spec, kind="rotation", magnitude=10.0, n_frames=6, seed=2)
    tr = MarkerTracker(TrackerConfig(grid=(5, 5), dark_markers=False, rest_frames=1))
    for f in seq:
        r = tr.update(255 - f.image)  # white markers on a dark gel
    np.testing.assert_allclose(r.positions, seq.frame(5).positions, atol=0.2)


def test_rest_reference_survives_dust_and_speckle():
    spec = MarkerImageSpec(rows=7, cols=9)
    rest = grid_positions(spec)
    img = render(spec, rest, noise_sigma=2.0, rng=np.random.default_rng(0))
    rng = np.random.default_rng(1)
    for x, y in rng.uniform([5, 5], [spec.width - 5, spec.height - 5], (300, 2)).astype(int):
        img[y : y + 2, x : x + 2] = 60  # dark specks outnumbering the markers
    img[200:260, 300:302] = 40  # a scratch
    tr = MarkerTracker(TrackerConfig(rest_frames=1))
    r = tr.update(img)
    assert r is not None
    np.testing.assert_allclose(tr.rest, rest, atol=0.5)
