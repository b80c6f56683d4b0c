import pytest

pytest.importorskip("pybullet")
