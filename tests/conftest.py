import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    # The CI machine's 2 cores are shared; intra-op threads then spin against each other
    # (a 10x slowdown measured on tiny models). One thread keeps these tests predictable.
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
