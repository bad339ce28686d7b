"""Bad input gets a clear error; the command line works on real photos."""

import shutil
import subprocess
import sys
from importlib import resources

import numpy as np
import pytest

from fracbnn_golden import FracBNN, ModelFormatError
from fracbnn_golden.__main__ import main
from fracbnn_golden.images import bundled_photos, load_image

MODEL = resources.files("fracbnn_golden") / "data" / "fracbnn_cifar10.npz"


@pytest.fixture(scope="module")
def params():
    with np.load(MODEL) as data:
        return {key: data[key] for key in data.files}


@pytest.mark.parametrize("pixels, error, message", [
    (np.zeros((1, 3, 32, 32), np.float32), TypeError, "uint8"),
    (np.zeros((1, 3, 32, 32), np.int16), TypeError, "uint8"),
    (np.zeros((3, 32, 32), np.uint8), ValueError, r"pixels\[None\]"),
    (np.zeros((2, 1, 32, 32), np.uint8), ValueError, r"\[N, 3, 32, 32\]"),
    (np.zeros((2, 3, 28, 28), np.uint8), ValueError, r"\[N, 3, 32, 32\]"),
    ([[[[0]]]], TypeError, "numpy array"),
])
def test_bad_pixels_are_rejected(net, pixels, error, message):
    with pytest.raises(error, match=message):
        net.logits(pixels)


def test_empty_batch_gives_empty_logits(net):
    logits, trace = net.logits(np.zeros((0, 3, 32, 32), np.uint8), trace=True)
    assert logits.shape == (0, 10) and trace["bn1"].shape == (0, 16, 32, 32)


def test_model_from_dict_equals_bundled(params, net, public_vectors):
    other = FracBNN(params)
    np.testing.assert_array_equal(other.logits(public_vectors["pixels"][:2]),
                                  public_vectors["logits"][:2])


@pytest.mark.parametrize("mutate, message", [
    (lambda p: p.pop("layer2_1.bn3.bias"), "missing .*'layer2_1.bn3.bias'"),
    (lambda p: p.update(extra=np.zeros(3)), "unexpected array 'extra'"),
    (lambda p: p.update({"bn1.weight": p["bn1.weight"][:8]}), r"'bn1.weight' has shape \[8\]"),
    (lambda p: p.update({"conv1.weight": p["conv1.weight"].astype(np.int16)}),
     "'conv1.weight' has dtype int16"),
    (lambda p: p.update({"layer1_0.conv1.weight": p["layer1_0.conv1.weight"] * 2}),
     r"'layer1_0.conv1.weight' has values in \[0, 2\]"),
    (lambda p: p.update({"linear.bias": np.full(10, 4000, np.int16)}),
     r"'linear.bias' has values in \[4000, 4000\], allowed \[-2048, 2047\]"),
])
def test_malformed_parameters_name_the_key(params, tmp_path, mutate, message):
    bad = dict(params)
    mutate(bad)
    with pytest.raises(ModelFormatError, match=message):
        FracBNN(bad)
    path = tmp_path / "bad.npz"
    np.savez(path, **bad)
    with pytest.raises(ModelFormatError, match=str(path)):
        FracBNN.from_npz(path)


def test_truncated_model_file(tmp_path):
    data = MODEL.read_bytes()
    for cut in (len(data) // 2, len(data) - 30, 100):
        path = tmp_path / f"cut{cut}.npz"
        path.write_bytes(data[:cut])
        with pytest.raises(ModelFormatError, match="cut"):
            FracBNN.from_npz(path)


def test_corrupt_member_names_the_array(tmp_path, params):
    path = tmp_path / "corrupt.npz"
    np.savez(path, **params)                      # stored uncompressed: offsets are easy to hit
    data = bytearray(path.read_bytes())
    header = data.find(b"linear.weight.npy")
    data[header + 80:header + 90] = b"\xff" * 10    # inside that member's .npy header
    path.write_bytes(bytes(data))
    with pytest.raises(ModelFormatError, match="linear.weight"):
        FracBNN.from_npz(path)


def test_not_a_model_file(tmp_path):
    path = tmp_path / "model.npz"
    path.write_text("hello")
    with pytest.raises(ModelFormatError, match="not a readable .npz"):
        FracBNN.from_npz(path)
    with pytest.raises(FileNotFoundError):
        FracBNN.from_npz(tmp_path / "absent.npz")


def test_bundled_photos_load_as_the_vector_pixels(public_vectors):
    photos = {path.stem: load_image(path) for path in bundled_photos()}
    order = ["airplane", "car", "bird", "deer", "dog", "cat"]
    assert sorted(photos) == sorted(order)
    for index, name in enumerate(order):
        np.testing.assert_array_equal(photos[name], public_vectors["pixels"][index])


def test_load_image_resizes_and_composites(tmp_path):
    from PIL import Image

    path = tmp_path / "wide.png"
    Image.new("RGBA", (90, 60), (0, 0, 255, 0)).save(path)    # fully transparent blue
    pixels = load_image(path)
    assert pixels.shape == (3, 32, 32) and pixels.dtype == np.uint8
    assert (pixels == 255).all()                               # composited onto white
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not a png")
    with pytest.raises(ValueError, match="not an image"):
        load_image(bad)


def test_cli_classify_prints_classes_and_logits(capsys, public_vectors):
    photos = [p for p in bundled_photos() if p.stem in ("bird", "deer")]
    assert main(["classify", *map(str, photos)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "bird" in lines[1] and lines[1].split()[1] == "bird"
    assert lines[2].split()[1] == "deer"
    logits = [float(v) for v in lines[1].split()[2:]]
    np.testing.assert_array_equal(np.array(logits) * 128, public_vectors["logits"][2])


def test_cli_logits_round_trip(tmp_path, public_vectors):
    pixels_path, out_path = tmp_path / "in.npy", tmp_path / "out.npy"
    np.save(pixels_path, public_vectors["pixels"][:3])
    result = subprocess.run([sys.executable, "-m", "fracbnn_golden", "logits", "--pixels",
                             str(pixels_path), "--out", str(out_path)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    np.testing.assert_array_equal(np.load(out_path), public_vectors["logits"][:3])


def test_cli_reports_bad_input(tmp_path, capsys):
    pixels_path = tmp_path / "in.npy"
    np.save(pixels_path, np.zeros((1, 3, 32, 32), np.float64))
    assert main(["logits", "--pixels", str(pixels_path), "--out", str(tmp_path / "o.npy")]) == 2
    assert "uint8" in capsys.readouterr().err
    shutil.copy(pixels_path, tmp_path / "model.npz")
    assert main(["--model", str(tmp_path / "model.npz"), "classify",
                 str(bundled_photos()[0])]) == 2
    assert "not a readable .npz" in capsys.readouterr().err
