"""The model file's optional ``class_names`` array: validated by the loader, shown by
``classify`` (no PyTorch needed)."""

import re

import numpy as np
import pytest

from fracbnn_golden import FracBNN, ModelFormatError
from fracbnn_golden.__main__ import main
from fracbnn_golden.images import bundled_photos, load_image
from fracbnn_golden.model import CLASS_NAMES_KEY, CLASSES

DIGITS = [str(d) for d in range(10)]


def _write(tmp_path, net, names):
    path = tmp_path / "named.npz"
    np.savez(path, **net.params, **({} if names is None else {CLASS_NAMES_KEY: names}))
    return path


def test_the_bundled_model_has_the_cifar10_classes(net):
    assert CLASS_NAMES_KEY not in net.params
    assert net.class_names == CLASSES


@pytest.mark.parametrize("names, expected", [
    (np.array(DIGITS), tuple(DIGITS)),
    (np.array(["cat", "dog"]), ("cat", "dog") + tuple(f"class {k}" for k in range(2, 10))),
])
def test_class_names_load_and_name_every_logit(tmp_path, net, names, expected):
    loaded = FracBNN.from_npz(_write(tmp_path, net, names))
    assert loaded.class_names == expected
    # The names change nothing else.
    pixels = np.zeros((1, 3, 32, 32), np.uint8)
    assert (loaded.logits(pixels) == net.logits(pixels)).all()


@pytest.mark.parametrize("names, message", [
    (np.array([str(k) for k in range(11)]), r"shape \[11\], expected \[K\] with 1 <= K <= 10"),
    (np.array([], dtype="<U1"), r"shape \[0\]"),
    (np.array([["a", "b"]]), r"shape \[1, 2\]"),
    (np.arange(10, dtype=np.int16), "dtype int16, expected unicode text"),
    (np.array([b"cat", b"dog"]), "dtype |S3, expected unicode text"),
    (np.array(["x" * 65]), "at most 64 characters"),
    (np.array(["cat", " "]), "holds ' '; names must be non-blank printable text"),
    (np.array(["cat", "d\nog"]), r"holds 'd\\nog'"),
    (np.array(["cat", "cat"]), "names a class twice"),
])
def test_bad_class_names_are_refused_by_name(tmp_path, net, names, message):
    path = _write(tmp_path, net, names)
    with pytest.raises(ModelFormatError) as error:
        FracBNN.from_npz(path)
    assert str(error.value).startswith(f"{path}: 'class_names'")
    assert re.search(message, str(error.value)) or message in str(error.value)
    # The constructor checks the same.
    with pytest.raises(ModelFormatError, match="class_names"):
        FracBNN({**net.params, CLASS_NAMES_KEY: names})


def test_classify_prints_the_model_files_class_names(tmp_path, net, capsys):
    names = np.array([f"digit {d}" for d in range(10)])
    path = _write(tmp_path, net, names)
    photo = bundled_photos()[0]
    assert main(["--model", str(path), "classify", str(photo)]) == 0
    out = capsys.readouterr().out
    predicted = int(np.argmax(net.logits(load_image(photo)[None])))
    assert f"digit {predicted}" in out.splitlines()[1]
    assert "classes digit 0, digit 1" in out.splitlines()[0]
    assert "airplane" not in out.splitlines()[0]
