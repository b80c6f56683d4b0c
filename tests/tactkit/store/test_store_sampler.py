"""SequenceSampler against a brute-force reference of diffusion_policy's semantics."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from store_sampler_reference import ReferenceSequenceSampler, reference_indices

from tactkit.store import ReplayBuffer, SequenceSampler, create_indices, get_val_mask


def make_buffer(lengths, seed=0) -> ReplayBuffer:
    rng = np.random.default_rng(seed)
    n = int(sum(lengths))
    data = {
        "obs": rng.normal(size=(n, 3)).astype(np.float32),
        "img": rng.integers(0, 255, size=(n, 4, 4, 3), dtype=np.uint8),
        "action": np.arange(n, dtype=np.float64)[:, None] * [1.0, -1.0],
        "step": np.arange(n, dtype=np.int64),
    }
    return ReplayBuffer(data, np.cumsum(lengths).astype(np.int64))


def brute_force_window(rb: ReplayBuffer, ep: int, start: int, s: int, key: str) -> np.ndarray:
    """Position p of the window shows frame clamp(start + p, 0, L-1) of episode ep."""
    sl = rb.episode_slice(ep)
    frames = rb[key][sl]
    return np.stack([frames[min(max(start + p, 0), len(frames) - 1)] for p in range(s)])


LENGTHS = [1, 2, 5, 9, 16, 3]


@pytest.mark.parametrize("s,pad_before,pad_after", [
    (1, 0, 0), (4, 0, 0), (4, 1, 3), (8, 7, 7), (6, 20, -3), (16, 1, 15), (3, 2, 0),
])
def test_windows_match_reference_and_brute_force(s, pad_before, pad_after):
    rb = make_buffer(LENGTHS)
    mask = np.array([True, True, False, True, True, True])
    fast = SequenceSampler(rb, s, pad_before, pad_after, episode_mask=mask)
    ref = ReferenceSequenceSampler(rb, s, pad_before, pad_after, episode_mask=mask)
    np.testing.assert_array_equal(fast.indices, ref.indices)
    np.testing.assert_array_equal(create_indices(rb.episode_ends, s, mask, pad_before, pad_after),
                                  reference_indices(rb.episode_ends, s, mask, pad_before, pad_after))
    # brute force enumeration of (episode, start) pairs
    pb, pa = min(max(pad_before, 0), s - 1), min(max(pad_after, 0), s - 1)
    expected = [(e, st) for e, L in enumerate(LENGTHS) if mask[e] for st in range(-pb, L - s + pa + 1)]
    assert len(fast) == len(ref) == len(expected)
    for i, (e, st) in enumerate(expected):
        a, b = fast.sample_sequence(i), ref.sample_sequence(i)
        for key in rb.keys():
            want = brute_force_window(rb, e, st, s, key)
            np.testing.assert_array_equal(a[key], want, err_msg=f"window {i} key {key}")
            np.testing.assert_array_equal(b[key], want)
    if len(fast):
        batch = fast.sample_batch(np.arange(len(fast)))
        for key in rb.keys():
            np.testing.assert_array_equal(batch[key], np.stack([fast.sample_sequence(i)[key] for i in range(len(fast))]))


@pytest.mark.parametrize("k,pad_before,pad_after", list(itertools.product([1, 2, 5], [0, 1, 4], [0, 3])))
def test_key_first_k_matches_reference(k, pad_before, pad_after):
    rb = make_buffer(LENGTHS, seed=1)
    kw = dict(sequence_length=5, pad_before=pad_before, pad_after=pad_after,
              key_first_k={"obs": k, "step": k})
    fast, ref = SequenceSampler(rb, **kw), ReferenceSequenceSampler(rb, **kw)
    assert len(fast) == len(ref)
    batch = fast.sample_batch(np.arange(len(fast)))
    for i in range(len(ref)):
        a, b = fast.sample_sequence(i), ref.sample_sequence(i)
        for key in rb.keys():
            np.testing.assert_array_equal(a[key], b[key], err_msg=f"window {i} key {key}")  # NaN == NaN here
            np.testing.assert_array_equal(batch[key][i], b[key])
    cut = fast.sample_batch(np.arange(len(fast)), first_k_only=True)
    for key in ("obs", "step"):
        assert cut[key].shape[1] == min(k, 5)
        np.testing.assert_array_equal(cut[key], batch[key][:, :k])
    np.testing.assert_array_equal(cut["img"], batch["img"])
    # the first k positions after the front padding are always real data
    for i in range(len(fast)):
        ss = fast.indices[i, 2]
        assert not np.isnan(fast.sample_sequence(i)["obs"][: ss + 1]).any()


def test_key_downsample():
    rb = make_buffer([10, 12])
    fast = SequenceSampler(rb, 7, 2, 3, key_downsample={"img": 3})
    ref = ReferenceSequenceSampler(rb, 7, 2, 3, key_downsample={"img": 3})
    for i in range(len(fast)):
        a, b = fast.sample_sequence(i), ref.sample_sequence(i)
        assert a["img"].shape[0] == fast.output_length("img") == 3
        np.testing.assert_array_equal(a["img"], b["img"])
        np.testing.assert_array_equal(a["img"], brute_force_window(
            rb, int(fast.episode_index[i]), int(fast.starts[i] - fast.ep_starts[i]), 7, "img")[::3])


def test_windows_never_cross_episodes():
    rb = make_buffer([4, 6, 5])
    sampler = SequenceSampler(rb, 6, 5, 5, keys=["step"])
    batch = sampler.sample_batch(np.arange(len(sampler)))["step"]
    ends = rb.episode_ends
    for w, e in zip(batch, sampler.episode_index):
        lo = 0 if e == 0 else ends[e - 1]
        assert (w >= lo).all() and (w < ends[e]).all()


def test_sampler_bad_input():
    rb = make_buffer([5])
    with pytest.raises(KeyError, match="no key 'nope'"):
        SequenceSampler(rb, 3, keys=["nope"])
    with pytest.raises(KeyError, match="key_first_k names 'img'"):
        SequenceSampler(rb, 3, keys=["obs"], key_first_k={"img": 1})
    with pytest.raises(ValueError, match="sequence_length"):
        SequenceSampler(rb, 0)
    with pytest.raises(IndexError):
        SequenceSampler(rb, 3).sample_sequence(99)


def test_val_mask_split_by_episode():
    for n in (2, 3, 10, 50):
        for ratio in (0.01, 0.1, 0.5, 0.99):
            m = get_val_mask(n, ratio, seed=4)
            assert 1 <= m.sum() <= n - 1
    assert get_val_mask(10, 0.0).sum() == 0
    np.testing.assert_array_equal(get_val_mask(20, 0.2, seed=1), get_val_mask(20, 0.2, seed=1))
    with pytest.raises(ValueError, match="at least 2 episodes"):
        get_val_mask(1, 0.1)
    rb = make_buffer([5, 6, 7, 8])
    mask = get_val_mask(4, 0.25, seed=0)
    train = SequenceSampler(rb, 3, episode_mask=~mask)
    val = SequenceSampler(rb, 3, episode_mask=mask)
    assert set(train.episode_index).isdisjoint(val.episode_index)
    assert len(train) + len(val) == len(SequenceSampler(rb, 3))


def test_torch_dataset():
    torch = pytest.importorskip("torch")
    from store_torch_dataset import SequenceDataset

    rb = make_buffer([10, 12, 9, 11])
    ds = SequenceDataset(rb, horizon=8, obs_keys=["obs", "img"], action_keys=["action", "step"],
                         n_obs_steps=2, val_ratio=0.25, seed=0)
    val = ds.get_validation_dataset()
    assert len(ds) > 0 and len(val) > 0
    assert set(ds.sampler.episode_index).isdisjoint(val.sampler.episode_index)
    item = ds[0]
    assert item["obs"]["obs"].shape == (2, 3) and item["obs"]["img"].shape == (2, 3, 4, 4)
    assert item["obs"]["img"].dtype == torch.float32 and float(item["obs"]["img"].max()) <= 1.0
    assert item["action"].shape == (8, 3)
    batch = ds.get_batch([0, 1, 2])
    for i in range(3):
        torch.testing.assert_close(batch["action"][i], ds[i]["action"])
        torch.testing.assert_close(batch["obs"]["img"][i], ds[i]["obs"]["img"])
    loader = torch.utils.data.DataLoader(ds, batch_size=4)
    first = next(iter(loader))
    assert first["action"].shape == (4, 8, 3)


def test_lazy_keys_read_per_window_give_identical_windows(tmp_path):
    rb_mem = make_buffer(LENGTHS, seed=2)
    rb = rb_mem.save(tmp_path / "view.zarr", image_quality=None)  # lossless: exact compare
    kw = dict(sequence_length=5, pad_before=2, pad_after=3, key_first_k={"img": 2, "obs": 2})
    eager = SequenceSampler(rb, **kw)
    lazy = SequenceSampler(rb, **kw, lazy_keys=["img", "action"])
    assert not isinstance(lazy.arrays["img"], np.ndarray)
    idx = np.arange(len(eager))
    for first_k_only in (False, True):
        a, b = eager.sample_batch(idx, first_k_only), lazy.sample_batch(idx, first_k_only)
        for key in rb.keys():
            np.testing.assert_array_equal(a[key], b[key])
    for i in idx:
        a, b = eager.sample_sequence(int(i)), lazy.sample_sequence(int(i))
        for key in rb.keys():
            np.testing.assert_array_equal(a[key], b[key])
    with pytest.raises(KeyError, match="lazy_keys names 'nope'"):
        SequenceSampler(rb, 3, lazy_keys=["nope"])
