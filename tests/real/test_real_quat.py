import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.transform import Rotation

from tactkit.real import quat as Q

rotvecs = st.tuples(*[st.floats(-3.0, 3.0)] * 3).map(np.array)


@settings(max_examples=200, deadline=None)
@given(a=rotvecs, b=rotvecs, s=st.floats(0.0, 1.0))
def test_quaternion_ops_match_scipy(a, b, s):
    ra, rb = Rotation.from_rotvec(a), Rotation.from_rotvec(b)
    qa, qb = ra.as_quat(scalar_first=True), rb.as_quat(scalar_first=True)
    assert (Rotation.from_quat(Q.exp(a), scalar_first=True) * ra.inv()).magnitude() < 1e-9
    prod = Q.mul(qa, qb)
    assert (Rotation.from_quat(prod, scalar_first=True) * (ra * rb).inv()).magnitude() < 1e-9
    np.testing.assert_allclose(Q.log(qa), Rotation.from_quat(qa, scalar_first=True).as_rotvec(), atol=1e-9)
    assert abs(Q.angle(qa, qb) - (rb * ra.inv()).magnitude()) < 1e-9
    from scipy.spatial.transform import Slerp

    ref = Slerp([0.0, 1.0], Rotation.concatenate([ra, rb]))([s])[0]
    got = Rotation.from_quat(Q.slerp(qa, qb, s), scalar_first=True)
    assert (got * ref.inv()).magnitude() < 1e-9
