"""Shared fixtures; the test data is in ``tests/data`` (see its README)."""

from pathlib import Path

import numpy as np
import pytest

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="session")
def public_vectors():
    """The official accelerator's public vectors: images, logits, per-layer traces."""
    with np.load(DATA / "fracbnn_cifar10_public.npz", allow_pickle=False) as data:
        return {key: data[key] for key in data.files}


@pytest.fixture(scope="session")
def net():
    from fracbnn_golden import FracBNN

    return FracBNN.default()


@pytest.fixture
def read_only_folder(tmp_path):
    """A folder nothing can be written in: a read-only one, or /proc where chmod does not stop
    root."""
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        (folder / "probe").write_bytes(b"")
    except OSError:
        yield folder
    else:
        (folder / "probe").unlink()
        yield Path("/proc")
    folder.chmod(0o755)


def pytest_sessionfinish(session, exitstatus):
    if exitstatus == pytest.ExitCode.NO_TESTS_COLLECTED:
        print("\nerror: pytest collected no tests: this is a failure, not a pass "
              "(check the test paths and -k/-m filters)")
