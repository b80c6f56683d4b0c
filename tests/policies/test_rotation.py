import numpy as np
import torch

from tactkit.policies.rotation import (
    pose7_to_pose9,
    pose9_to_pose7,
    quat_to_matrix,
    quat_to_rot6d,
    rot6d_to_matrix,
    rot6d_to_quat,
)


def _random_quats(n: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(n, 4, generator=g, dtype=torch.float64)
    return q / q.norm(dim=-1, keepdim=True)


def test_quat_rot6d_round_trip_up_to_sign():
    q = _random_quats(2000)
    # include the hard cases: 180 degree turns about each axis and identity
    special = torch.tensor([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]], dtype=torch.float64)
    q = torch.cat([q, special, -special])
    back = rot6d_to_quat(quat_to_rot6d(q))
    canon = torch.where(q[:, :1] < 0, -q, q)
    err = torch.minimum((back - canon).abs().amax(-1), (back + canon).abs().amax(-1))
    assert err.max() < 1e-9
    assert torch.allclose(back.norm(dim=-1), torch.ones(len(q), dtype=torch.float64))
    assert (back[:, 0] >= 0).all()


def test_gram_schmidt_gives_rotation_for_noisy_6d():
    q = _random_quats(500, seed=1)
    r6 = quat_to_rot6d(q) + 0.05 * torch.randn(500, 6, dtype=torch.float64)
    m = rot6d_to_matrix(r6)
    eye = torch.eye(3, dtype=torch.float64).expand(500, 3, 3)
    assert torch.allclose(m.transpose(-1, -2) @ m, eye, atol=1e-12)
    assert torch.allclose(torch.linalg.det(m), torch.ones(500, dtype=torch.float64))
    # first column is the normalised first 3-vector
    a1 = r6[:, :3] / r6[:, :3].norm(dim=-1, keepdim=True)
    assert torch.allclose(m[..., 0], a1)


def test_matrix_agrees_with_scipy():
    from scipy.spatial.transform import Rotation

    q = _random_quats(100, seed=2).numpy()
    ours = quat_to_matrix(torch.from_numpy(q)).numpy()
    ref = Rotation.from_quat(q[:, [1, 2, 3, 0]]).as_matrix()  # scipy: x, y, z, w
    np.testing.assert_allclose(ours, ref, atol=1e-12)


def test_pose_conversion_shapes_and_round_trip():
    q = _random_quats(24, seed=3).float().reshape(2, 12, 4)
    q = torch.where(q[..., :1] < 0, -q, q)
    p7 = torch.cat([torch.randn(2, 12, 3), q], -1)
    p9 = pose7_to_pose9(p7)
    assert p9.shape == (2, 12, 9) and p9.dtype == torch.float32
    back = pose9_to_pose7(p9)
    assert back.shape == (2, 12, 7)
    assert torch.allclose(back, p7, atol=1e-6)


def test_numpy_rot6d_to_quat_matches_torch():
    from tactkit.policies.rotation import rot6d_to_quat_np, rot6d_to_quat_scalar

    g = torch.Generator().manual_seed(4)
    r6 = quat_to_rot6d(_random_quats(300, seed=4)) + 0.1 * torch.randn(300, 6, generator=g, dtype=torch.float64)
    ref = rot6d_to_quat(r6).numpy()
    ours = rot6d_to_quat_np(r6.numpy())
    assert ours.shape == (300, 4) and ours.dtype == np.float64
    np.testing.assert_allclose(ours, ref, atol=1e-12)
    np.testing.assert_allclose(rot6d_to_quat_np(r6.numpy()[0]), ref[0], atol=1e-12)  # one action
    scalar = np.stack([rot6d_to_quat_scalar(r) for r in r6.numpy()])  # the fast-step path
    np.testing.assert_allclose(scalar, ref, atol=1e-12)
