import numpy as np
import pytest
import torch

from tactkit.sensors.embedding import TactilePCA


def _low_rank_offsets(n=400, m=63, rank=4, seed=0, basis_seed=None):
    rng = np.random.default_rng(seed)
    basis = np.random.default_rng(basis_seed).normal(size=(rank, m * 2)) if basis_seed is not None else rng.normal(size=(rank, m * 2))
    codes = rng.normal(size=(n, rank)) * np.array([5.0, 3.0, 2.0, 1.0])[:rank]
    x = codes @ basis + 0.3 + rng.normal(scale=1e-3, size=(n, m * 2))
    return x.reshape(n, m, 2).astype(np.float32)


def test_fit_recovers_low_rank_structure_and_round_trips(tmp_path):
    x = _low_rank_offsets()
    pca = TactilePCA.fit(x, n_components=6)
    ratio = pca.explained_variance_ratio
    assert ratio[:4].sum() > 0.999  # the 4 true directions carry all but the noise
    assert np.all(np.diff(pca.explained_variance) <= 0)
    np.testing.assert_allclose(pca.components @ pca.components.T, np.eye(6), atol=1e-10)
    z = pca.transform(x)
    assert z.shape == (400, 6) and z.dtype == np.float32
    rec = pca.inverse_transform(z)
    assert rec.shape == x.shape
    assert np.sqrt(np.mean((rec - x) ** 2)) < 5e-3
    # flat and [M, 2] inputs agree; leading batch dims are kept
    np.testing.assert_allclose(pca.transform(x.reshape(400, -1)), z)
    assert pca.transform(x.reshape(20, 20, 63, 2)).shape == (20, 20, 6)

    path = pca.save(tmp_path / "pca.safetensors")
    loaded = TactilePCA.load(path)
    np.testing.assert_array_equal(loaded.components, pca.components)
    np.testing.assert_array_equal(loaded.mean, pca.mean)
    np.testing.assert_allclose(loaded.explained_variance_ratio, ratio)
    assert loaded.metadata["n_samples"] == 400
    np.testing.assert_allclose(loaded.transform(x), z)


def test_torch_tensors_stay_tensors_and_match_numpy():
    x = _low_rank_offsets(n=50)
    pca = TactilePCA.fit(x, n_components=5)
    zt = pca.transform(torch.from_numpy(x))
    assert isinstance(zt, torch.Tensor) and zt.dtype == torch.float32
    np.testing.assert_allclose(zt.numpy(), pca.transform(x), atol=1e-4)
    rec = pca.inverse_transform(zt)
    assert isinstance(rec, torch.Tensor) and tuple(rec.shape) == (50, 63, 2)


def test_bad_inputs_are_named(tmp_path):
    x = _low_rank_offsets(n=10)
    with pytest.raises(ValueError, match="n_components"):
        TactilePCA.fit(x, n_components=11)
    with pytest.raises(ValueError, match=r"\[N, M, 2\]"):
        TactilePCA.fit(np.zeros((10, 63, 3)))
    pca = TactilePCA.fit(x, n_components=3)
    with pytest.raises(ValueError, match="63, 2"):
        pca.transform(np.zeros((4, 25, 2)))
    bad = x.copy()
    bad[3, 0, 0] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        TactilePCA.fit(bad)
    (tmp_path / "x.safetensors").write_bytes(b"junk")
    with pytest.raises(FileNotFoundError):
        TactilePCA.load(tmp_path / "missing.safetensors")


def _make_store(path, n_eps=2, n=120):
    from tactkit.store import EpisodeStore, StreamSpec

    keys = ["observation.tactile.left.marker_offset", "observation.tactile.right.marker_offset"]
    streams = {k: StreamSpec("float32", (63, 2), 24.0, "normalised") for k in keys}
    streams["observation.wrench"] = StreamSpec("float32", (6,), 100.0, "N")
    store = EpisodeStore.create(str(path), streams=streams)
    for e in range(n_eps):
        with store.begin_episode(task="press") as rec:
            for k_i, k in enumerate(keys):
                x = _low_rank_offsets(n=n, seed=10 * e + k_i, basis_seed=99) * 0.01
                rec.append_many(k, np.arange(n) / 24.0, x)
    return keys


def test_fit_pca_from_store_and_cli(tmp_path, capsys):
    from tactkit.cli.main import main
    from tactkit.sensors.embedding import fit_pca_from_store

    keys = _make_store(tmp_path / "s.zarr")
    pca = fit_pca_from_store(tmp_path / "s.zarr", keys[0], n_components=5)
    assert pca.metadata["n_samples"] == 240 and pca.metadata["keys"] == [keys[0]]
    both = fit_pca_from_store(tmp_path / "s.zarr", None, n_components=5)
    assert both.metadata["n_samples"] == 480  # both pads stacked
    out = tmp_path / "pca.safetensors"
    rc = main(["tactile", "fit-pca", str(tmp_path / "s.zarr"), "--key", keys[1],
               "--components", "6", "--out", str(out)])
    assert rc == 0
    text = capsys.readouterr().out
    assert "6 components explain" in text and "240 samples" in text
    loaded = TactilePCA.load(out)
    assert loaded.n_components == 6 and loaded.explained_variance_ratio[:4].sum() > 0.999
    # bad key: clear error, exit code 1
    rc = main(["tactile", "fit-pca", str(tmp_path / "s.zarr"), "--key", "observation.nope",
               "--out", str(out)])
    assert rc == 1
    assert "no stream 'observation.nope'" in capsys.readouterr().err
