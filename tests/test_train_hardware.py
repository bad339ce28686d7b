# amaranth: UnusedElaboratable=no
"""A trained model (tests/data/fracbnn_mnist.npz, written by ``python -m fracbnn_train --data
mnist``) in the hardware flow: the RTL simulation runs its test digits bit-exactly (one
Verilator build of the whole accelerator, a minute or two, cached in build/sim/), and both
``--model`` options refuse a bad file before any work. No PyTorch needed."""

import re
from pathlib import Path

import numpy as np
import pytest

from boards.ultra96.__main__ import main as board_main
from fracbnn_golden import FracBNN
from fracbnn_golden.kernels import fracbnn_conv_kernels
from sim.accelerator import main as accelerator_main
from sim.accelerator import run_accelerator

DATA = Path(__file__).parent / "data"
MODEL = DATA / "fracbnn_mnist.npz"
DIGITS = DATA / "mnist_test_digits.npz"


@pytest.fixture(scope="module")
def trained():
    return FracBNN.from_npz(MODEL)


def test_the_trained_model_is_not_the_bundled_one(trained, net):
    assert trained.class_names == tuple(str(d) for d in range(10))
    kernels, bundled = fracbnn_conv_kernels(trained), fracbnn_conv_kernels(net)
    assert all(not np.array_equal(kernels[name], bundled[name]) for name in kernels)
    with np.load(DIGITS) as digits:
        assert (trained.logits(digits["pixels"]).argmax(1) == digits["labels"]).mean() >= 0.9


@pytest.mark.parametrize("command", [
    lambda bad, tmp: accelerator_main(["--model", str(bad), "--photos"]),
    lambda bad, tmp: board_main(["build", "--model", str(bad), "--out", str(tmp / "board"),
                                 "--no-vivado", "--no-estimate"]),
])
def test_a_bad_model_file_is_refused_before_any_work(tmp_path, capsys, command):
    bad = tmp_path / "bad.npz"
    np.savez(bad, **{"conv1.weight": np.zeros((16, 96, 3, 3), np.uint8)})
    assert command(bad, tmp_path) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {bad}: missing") and "\n" not in err
    assert not (tmp_path / "board").exists()


def test_trained_model_through_the_rtl_bit_exactly(trained, tmp_path, capsys):
    with np.load(DIGITS) as digits:
        pixels = digits["pixels"]
    run = run_accelerator(pixels, net=trained)
    np.testing.assert_array_equal(run.logits, trained.logits(pixels))
    # The command line: the same (cached) build, the model's class names in its table.
    out = tmp_path / "rtl.npz"
    assert accelerator_main(["--model", str(MODEL), "--pixels", str(DIGITS),
                             "--out", str(out)]) == 0
    with np.load(out) as produced:
        np.testing.assert_array_equal(produced["logits"], run.logits)
    table = capsys.readouterr().out
    for index, row in enumerate(run.logits):         # class names "0".."9", all bit-exact
        assert re.search(rf"^image {index} +{np.argmax(row)} +yes ", table, re.MULTILINE)
