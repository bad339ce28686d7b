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


def pytest_sessionfinish(session, exitstatus):
    if exitstatus == pytest.ExitCode.NO_TESTS_COLLECTED:
        print("\nerror: pytest collected no tests: this is a failure, not a pass "
              "(check the test paths and -k/-m filters)")
