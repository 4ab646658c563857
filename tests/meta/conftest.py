import pytest
import torch


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    """Small tensors + a shared 2-core box: intra-op threads only add waiting (tiny scatters
    take ~10 ms each with 2 threads under load). One thread per test module (set before module-scoped fixtures), restored afterwards."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
